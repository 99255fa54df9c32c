"""Live alerting, end to end: chiprisk consuming from a real broker (Tansu),
a real Prometheus scraping it every second with the project's own rules
(deploy/prometheus/chiprisk-rules.yml), a real Alertmanager with the
project's example routing (deploy/alertmanager/alertmanager.yml), posting to
a webhook this test owns; and every query of the Grafana dashboard
(deploy/grafana/chiprisk-dashboard.json) run on that Prometheus.
"""

import json
from datetime import datetime, timezone
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import yaml

from e2e_harness import ROOT, Chiprisk, free_port, produce, scenario, wait_for

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


class Webhook:
    """Collects what Alertmanager posts: (receiver, alert) pairs."""

    def __init__(self):
        self.received = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.received.extend((self.path.strip("/"), a) for a in body.get("alerts", []))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def notifications(self, alertname=None):
        """Every alert posted (firing or resolved), optionally of one name."""
        return [(r, a) for r, a in self.received if alertname in (None, a["labels"]["alertname"])]


def start_alertmanager(tmp_path, webhook_port):
    """Alertmanager with the project's example configuration
    (deploy/alertmanager/alertmanager.yml), every receiver pointed at the
    test's webhook, and the policy route's waits shortened from seconds and
    minutes to a second or two, so that a second notification would show
    within the test."""
    config = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"http://127.0.0.1:{webhook_port}/{receiver['name']}"
    for route in [config["route"], *config["route"]["routes"]]:
        route.update({"group_wait": "1s", "group_interval": "2s"})
    return run_alertmanager(tmp_path, config)


def run_alertmanager(tmp_path, config):
    """A real Alertmanager with this configuration; (process, port)."""
    port = free_port()
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'am'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "alertmanager.log", "w"),
    )
    wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).status == 200, 30, "alertmanager")
    return proc, port


def start_prometheus(tmp_path, am_port, rule_files=None):
    """Prometheus scraping every second the targets listed in targets.json
    (rewrite it with set_targets), with the project's rules (or these)."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(f) for f in rule_files or [ROOT / "deploy" / "prometheus" / "chiprisk-rules.yml"]],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": "chiprisk", "file_sd_configs": [{"files": [str(tmp_path / "targets.json")], "refresh_interval": "1s"}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    if not (tmp_path / "targets.json").exists():
        set_targets(tmp_path, {})
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"),
    )
    wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).status == 200, 30, "prometheus")
    return proc, port


def set_targets(tmp_path, apps):
    """The scrape targets: {pod name: Chiprisk}, as Kubernetes would list pods."""
    targets = [{"targets": [f"127.0.0.1:{app.port}"], "labels": {"pod": pod, "namespace": "chiprisk"}} for pod, app in apps.items()]
    tmp = tmp_path / "targets.json.tmp"
    tmp.write_text(json.dumps(targets))
    tmp.rename(tmp_path / "targets.json")


def query(prom_port, expr):
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def dashboard_queries():
    d = json.loads((ROOT / "deploy" / "grafana" / "chiprisk-dashboard.json").read_text())
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])] + [a["expr"] for a in d["annotations"]["list"]]
    return [e.replace("$vendor", ".*").replace("$namespace", ".*").replace("$job", "chiprisk").replace("$__rate_interval", "1m") for e in exprs]


def assert_have_data(prom_port, exprs):
    missing = []
    for expr in exprs:
        try:
            wait_for(lambda: query(prom_port, expr), 30, expr)
        except AssertionError:
            missing.append(expr)
    assert not missing, f"dashboard queries without data: {missing}"


def event(id, type, occurred_at, products, title, source_url):
    return json.dumps({"id": id, "type": type, "occurred_at": occurred_at, "vendors": ["nvidia"],
                       "products": products, "title": title, "source_url": source_url}).encode()


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def evaluated_since(prom_port, t, count=3):
    """Whether Prometheus has evaluated every rule group (chiprisk's three,
    and any others loaded) since time t."""
    with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=5) as r:
        groups = json.loads(r.read())["data"]["groups"]
    stamps = [g["lastEvaluation"] for g in groups]
    return len(stamps) == count and all(datetime.fromisoformat(s[:26].rstrip("Z")).replace(tzinfo=timezone.utc).timestamp() > t for s in stamps)


def test_one_notification_per_policy_change_through_history_a_ban_a_rollout_and_a_lift(broker, tmp_path):
    """The life of a deployment, with real Prometheus (the project's rules)
    and real Alertmanager (the project's example routing):
    1. start over years of history: no notification;
    2. a new export ban: exactly one, to the policy receiver, with what a
       person needs to act on it;
    3. a rollout, a second replica beside the first, then the first gone,
       and a Prometheus restart: still one;
    4. the ban lifted: one for the lift, and still one for the ban.
    Every dashboard query returns data meanwhile."""
    history = scenario()
    produce(broker, history)
    a = Chiprisk(broker, tmp_path, name="a")
    hook = Webhook()
    am, am_port = start_alertmanager(tmp_path, hook.port)
    prom, prom_port = start_prometheus(tmp_path, am_port)
    apps = [a]
    try:
        wait_for(a.ready, 60, "replica a ready")
        set_targets(tmp_path, {"chiprisk-a": a})
        wait_for(lambda: query(prom_port, 'chiprisk_vendor_risk_score{vendor="nvidia"}'), 30, "the scores scraped")
        # History holds bans and lifts from 2022 on: none is news.
        exported = [l for l in a.metrics().splitlines() if l.startswith("chiprisk_policy_change_timestamp_seconds{")]
        assert exported == [], "history older than 30 days is not exported as a policy change"
        history_done = time.time()
        wait_for(lambda: evaluated_since(prom_port, history_done + 3), 30, "the rules evaluated over the history")
        time.sleep(3)  # group_wait 1s, group_interval 2s: anything sent has arrived
        assert hook.notifications() == [], "starting over history notified"

        # 2. A new ban, occurred a minute ago.
        title = "US requires export licences for the H20 (e2e)"
        source = "https://www.example.com/h20-rule"
        produce(broker, [event("e2e-ban", "export_ban", rfc3339(time.time() - 60), ["H20"], title, source)])
        sent = time.time()
        wait_for(lambda: hook.notifications("ChipriskExportBanImposed"), 60, "the export-ban notification")
        latency = time.time() - sent
        receiver, alert = hook.notifications("ChipriskExportBanImposed")[0]
        assert receiver == "policy-desk", "news goes to the analysts, not the on-call"
        assert alert["status"] == "firing"
        labels, notes = alert["labels"], alert["annotations"]
        assert (labels["vendor"], labels["kind"], labels["product"], labels["event_id"]) == ("nvidia", "export", "H20", "e2e-ban")
        assert labels["severity"] == "notice" and labels["category"] == "policy"
        assert "pod" not in labels and "instance" not in labels
        assert title in notes["description"] and notes["source_url"] == source
        assert rfc3339(time.time() - 60)[:10] in notes["description"], "when it occurred"
        assert notes["explanation_url"].endswith("/api/v1/scores/nvidia")
        assert notes["runbook_url"].endswith("docs/runbook.md#chipriskexportbanimposed")

        # 3. A rollout: b starts beside a, is ready and scraped, then a goes.
        b = Chiprisk(broker, tmp_path, name="b")
        apps.append(b)
        wait_for(b.ready, 60, "replica b ready")
        set_targets(tmp_path, {"chiprisk-a": a, "chiprisk-b": b})
        wait_for(lambda: query(prom_port, 'chiprisk_ready{pod="chiprisk-b"} == 1'), 30, "b scraped")
        a.stop()
        set_targets(tmp_path, {"chiprisk-b": b})
        rolled = time.time()
        wait_for(lambda: not query(prom_port, 'up{pod="chiprisk-a"}'), 30, "a gone from the targets")
        wait_for(lambda: evaluated_since(prom_port, rolled + 5), 30, "the rules evaluated after the rollout")
        time.sleep(3)
        assert len(hook.notifications("ChipriskExportBanImposed")) == 1, hook.notifications()

        # 3b. Prometheus restarts (same storage): the alert fires again in it, Alertmanager knows it.
        prom.terminate()
        prom.wait(30)
        prom, prom_port = start_prometheus(tmp_path, am_port)
        restarted = time.time()
        wait_for(lambda: query(prom_port, 'ALERTS{alertname="ChipriskExportBanImposed", alertstate="firing"}'), 30, "the alert firing after the restart")
        wait_for(lambda: evaluated_since(prom_port, restarted + 5), 30, "the rules evaluated after the restart")
        time.sleep(3)
        assert len(hook.notifications("ChipriskExportBanImposed")) == 1, hook.notifications()

        # 4. The ban lifted.
        lift_title = "US signals it will grant H20 licences (e2e)"
        produce(broker, [event("e2e-lift", "export_ban_lifted", rfc3339(time.time() - 30), ["H20"], lift_title, source)])
        wait_for(lambda: hook.notifications("ChipriskBanLifted"), 60, "the ban-lifted notification")
        lifted = time.time()
        wait_for(lambda: evaluated_since(prom_port, lifted + 3), 30, "the rules evaluated after the lift")
        time.sleep(3)
        assert [a["labels"]["event_id"] for _, a in hook.notifications("ChipriskBanLifted")] == ["e2e-lift"]
        assert lift_title in hook.notifications("ChipriskBanLifted")[0][1]["annotations"]["description"]
        assert len(hook.notifications("ChipriskExportBanImposed")) == 1
        assert {r for r, _ in hook.notifications()} == {"policy-desk"}, hook.notifications()
        print(f"ban to webhook: {latency:.1f} s")

        assert_have_data(prom_port, dashboard_queries())
    finally:
        prom.terminate()
        am.terminate()
        for app in apps:
            if app.proc.poll() is None:
                app.stop()
        hook.server.shutdown()
