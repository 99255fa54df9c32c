"""Alerts under kube-prometheus-stack's defaults, live: chiprisk on a real
broker (Tansu) with the bundled history published by `chiprisk publish`; a
real Prometheus (1 s scrape and evaluation) with the chart's rules rendered
from values plus the stack's own `general.rules` (Watchdog, InfoInhibitor);
a real Alertmanager with the stack's default configuration, its inhibit
rules unchanged, and the README's route for `category="policy"` to one
webhook, everything else to another.

What a new user of the stack must see:
1. a steady state over the bundled history: no notification;
2. a new export ban: exactly one notification, to the policy webhook, while
   no other chiprisk alert fires in the namespace (so nothing lifts the
   InfoInhibitor: an `info` ban alert would be inhibited here);
3. the broker unreachable while the replica stays ready: exactly one health
   notification, then its resolution once the broker is back.
The test shortens ChipriskKafkaUnreachable's durations through the chart's
values (`silentFor`, `for`), not by editing rules.
"""

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from test_alerts_e2e import (
    Webhook, evaluated_since, event, query, rfc3339, run_alertmanager, set_targets, start_prometheus,
)
from e2e_harness import BIN, ROOT, Chiprisk, create_topics, produce, start_tansu, wait_for

sys.path.insert(0, str(ROOT / "tests" / "chart"))
from rules import render_rules  # noqa: E402

STACK = Path(__file__).parent / "kube_prometheus_stack"
HISTORY = ROOT / "data" / "history.jsonl"

# Only durations, through the chart's values.
VALUES = {"monitoring": {"prometheusRule": {"alerts": {
    "ChipriskKafkaUnreachable": {"enabled": True, "severity": "warning", "silentFor": "10s", "for": "10s"},
}}}}


def stack_alertmanager(tmp_path, hook_port):
    """The stack's default configuration with the README's routes: policy to
    one webhook, everything else (the stack's default receiver) to another,
    Watchdog to "null" as the stack ships it."""
    config = yaml.safe_load((STACK / "alertmanager.yml").read_text())
    config.pop("templates")
    route = config["route"]
    route.update({"receiver": "platform", "group_wait": "1s", "group_interval": "2s"})
    route["routes"].append({"receiver": "policy", "matchers": ['category = "policy"']})
    config["receivers"] += [
        {"name": name, "webhook_configs": [{"url": f"http://127.0.0.1:{hook_port}/{name}", "send_resolved": True}]}
        for name in ("platform", "policy")
    ]
    return run_alertmanager(tmp_path, config)


def firing_in_namespace(prom_port):
    return sorted(r["metric"]["alertname"] for r in query(prom_port, 'ALERTS{namespace="chiprisk", alertstate="firing"}'))


def test_under_the_stacks_defaults_news_arrives_once_health_sees_a_broker_outage_and_steady_state_is_silent(tmp_path):
    tansu, url = start_tansu(tmp_path)
    brokers = url.removeprefix("tcp://")
    apps, procs = [], [tansu]
    try:
        create_topics(url)
        env = {"CHIPRISK__KAFKA__BROKERS": brokers}
        published = subprocess.run([BIN, "publish", str(HISTORY)], env={**os.environ, **env},
                                   capture_output=True, text=True, timeout=120)
        assert published.returncode == 0, published.stderr

        groups = render_rules(copy.deepcopy(VALUES))
        (tmp_path / "chiprisk-rules.yml").write_text(yaml.safe_dump({"groups": groups}))
        hook = Webhook()
        am, am_port = stack_alertmanager(tmp_path, hook.port)
        procs.append(am)
        prom, prom_port = start_prometheus(tmp_path, am_port, [tmp_path / "chiprisk-rules.yml", STACK / "general.rules.yml"])
        procs.append(prom)
        app = Chiprisk(brokers, tmp_path, name="a")
        apps.append(app)
        wait_for(app.ready, 90, "the replica ready over the bundled history")
        set_targets(tmp_path, {"chiprisk-a": app})
        wait_for(lambda: query(prom_port, 'chiprisk_vendor_risk_score{vendor="nvidia", namespace="chiprisk"}'), 30, "the scores scraped")
        assert float(query(prom_port, 'chiprisk_vendor_risk_score{vendor="nvidia"}')[0]["value"][1]) > 80, \
            "the bundled history scores nvidia high: a level alert would fire here"
        wait_for(lambda: query(prom_port, 'ALERTS{alertname="Watchdog"}'), 30, "the stack's Watchdog firing")

        # 1. Steady state: two minutes, nothing to anyone.
        steady = time.time()
        while time.time() < steady + 120:
            assert app.proc.poll() is None
            time.sleep(5)
        wait_for(lambda: evaluated_since(prom_port, steady + 110, count=4), 30, "the rules evaluated meanwhile")
        assert hook.notifications() == [], hook.notifications()
        assert firing_in_namespace(prom_port) == [], "no chiprisk alert fires on a steady state"

        # 2. A new export ban, occurred a minute ago.
        title = "US requires licences for the H20 (stack e2e)"
        sent = time.time()
        produce(brokers, [event("stack-e2e-ban", "export_ban", rfc3339(time.time() - 60), ["H20"], title,
                                "https://www.example.com/h20")])
        wait_for(lambda: hook.notifications("ChipriskExportBanImposed"), 60, "the export-ban notification")
        print(f"ban to webhook: {time.time() - sent:.1f} s")
        settled = time.time()
        wait_for(lambda: evaluated_since(prom_port, settled + 5, count=4), 30, "the rules evaluated after the ban")
        time.sleep(4)
        assert [(r, a["labels"]["alertname"], a["status"]) for r, a in hook.notifications()] == [
            ("policy", "ChipriskExportBanImposed", "firing")
        ], hook.notifications()
        labels = hook.notifications()[0][1]["labels"]
        assert (labels["severity"], labels["category"], labels["namespace"]) == ("notice", "policy", "chiprisk")
        assert firing_in_namespace(prom_port) == ["ChipriskExportBanImposed"], \
            "nothing else fires in the namespace: the ban got through on its own"
        assert not query(prom_port, 'ALERTS{alertname="InfoInhibitor"}')

        # 3. The broker stops answering (frozen: its in-memory log survives), the replica stays ready.
        tansu.send_signal(signal.SIGSTOP)
        stopped = time.time()
        try:
            wait_for(lambda: hook.notifications("ChipriskKafkaUnreachable"), 120, "the broker-outage notification")
            took = time.time() - stopped
            assert app.ready(), "the replica stays ready: its scores are whole, only stale"
            time.sleep(6)
            health = [(r, a["labels"]["alertname"], a["status"]) for r, a in hook.notifications() if r == "platform"]
            assert health == [("platform", "ChipriskKafkaUnreachable", "firing")], hook.notifications()
            print(f"broker frozen to notification: {took:.1f} s (silentFor 10s + for 10s)")
        finally:
            tansu.send_signal(signal.SIGCONT)
        back = time.time()
        wait_for(lambda: [a for _, a in hook.notifications("ChipriskKafkaUnreachable") if a["status"] == "resolved"],
                 120, "the outage resolved")
        print(f"broker back to resolution: {time.time() - back:.1f} s")
        time.sleep(4)
        assert [(r, a["labels"]["alertname"], a["status"]) for r, a in hook.notifications()] == [
            ("policy", "ChipriskExportBanImposed", "firing"),
            ("platform", "ChipriskKafkaUnreachable", "firing"),
            ("platform", "ChipriskKafkaUnreachable", "resolved"),
        ], hook.notifications()
    finally:
        for a in apps:
            if a.proc.poll() is None:
                a.stop()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
                p.wait(20)
        if "hook" in locals():
            hook.server.shutdown()
