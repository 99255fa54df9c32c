"""Live alerting, end to end: chiprisk consuming from a real broker (Tansu),
a real Prometheus scraping it every second with the project's own rules
(deploy/prometheus/chiprisk-rules.yml), a real Alertmanager routing to a
webhook this test owns. An export ban for nvidia must reach the webhook with
vendor="nvidia" and the event's title within 60 s, and its lift the
ban-lifted alert; meanwhile every query of the Grafana dashboard
(deploy/grafana/chiprisk-dashboard.json) must return data.
"""

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import yaml

from test_kafka_e2e import ROOT, Chiprisk, broker, free_port, produce, scenario, wait_for  # noqa: F401 (fixture)

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


class Webhook:
    """Collects the alerts Alertmanager posts."""

    def __init__(self):
        self.alerts = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.alerts.extend(body.get("alerts", []))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, alertname, **labels):
        for a in self.alerts:
            if a["labels"].get("alertname") == alertname and all(a["labels"].get(k) == v for k, v in labels.items()):
                return a
        return None


def start_alertmanager(tmp_path, webhook_port):
    port = free_port()
    config = {
        "route": {"receiver": "test", "group_by": ["alertname", "vendor"], "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "test", "webhook_configs": [{"url": f"http://127.0.0.1:{webhook_port}/", "send_resolved": False}]}],
    }
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'am'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "alertmanager.log", "w"),
    )
    wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).status == 200, 30, "alertmanager")
    return proc, port


def start_prometheus(tmp_path, app_port, am_port):
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy" / "prometheus" / "chiprisk-rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": "chiprisk", "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"),
    )
    wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).status == 200, 30, "prometheus")
    return proc, port


def query(prom_port, expr):
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def dashboard_queries():
    d = json.loads((ROOT / "deploy" / "grafana" / "chiprisk-dashboard.json").read_text())
    exprs = [t["expr"] for p in d["panels"] for t in p["targets"]] + [a["expr"] for a in d["annotations"]["list"]]
    return [e.replace("$vendor", ".*").replace("$__rate_interval", "1m") for e in exprs]


def assert_have_data(prom_port, exprs):
    missing = []
    for expr in exprs:
        try:
            wait_for(lambda: query(prom_port, expr), 30, expr)
        except AssertionError:
            missing.append(expr)
    assert not missing, f"dashboard queries without data: {missing}"


def event(id, type, products, title):
    return json.dumps({"id": id, "type": type, "occurred_at": "2025-04-15T00:00:00Z", "vendors": ["nvidia"],
                       "products": products, "title": title}).encode()


def test_policy_alerts_reach_the_webhook_and_every_dashboard_query_has_data(broker, tmp_path):
    app = Chiprisk(broker, tmp_path)
    hook = Webhook()
    am, am_port = start_alertmanager(tmp_path, hook.port)
    prom, prom_port = start_prometheus(tmp_path, app.port, am_port)
    try:
        wait_for(app.ready, 60, "chiprisk ready")
        # History without bans, so that no ban is "new" when Prometheus starts.
        produce(broker, [e for e in scenario() if b'"export_ban"' not in e and b"_ban" not in e])
        wait_for(lambda: query(prom_port, 'up{job="chiprisk"} == 1'), 30, "the first scrapes")
        time.sleep(3)

        title = "US requires export licences for the H20 (e2e)"
        produce(broker, [event("e2e-ban", "export_ban", ["H20"], title)])
        started = time.time()
        alert = wait_for(lambda: hook.find("ChipriskExportBanImposed", vendor="nvidia"), 60, "the export-ban alert")
        assert time.time() - started < 60
        assert alert["labels"]["product"] == "H20"
        assert title in alert["annotations"]["description"], alert
        assert alert["labels"]["severity"] == "critical"

        # With the ban in force, every dashboard query but the lift annotation has data.
        queries = dashboard_queries()
        assert_have_data(prom_port, [q for q in queries if "last_lift_info" not in q])

        lift_title = "US signals it will grant H20 licences (e2e)"
        produce(broker, [event("e2e-lift", "export_ban_lifted", ["H20"], lift_title).replace(b"2025-04-15", b"2025-07-15")])
        lifted = wait_for(lambda: hook.find("ChipriskBanLifted", vendor="nvidia"), 60, "the ban-lifted alert")
        assert lift_title in lifted["annotations"]["description"], lifted
        assert_have_data(prom_port, [q for q in queries if "last_lift_info" in q])
    finally:
        prom.terminate()
        am.terminate()
        app.stop()
        hook.server.shutdown()
