"""History from day one: `chiprisk backfill` writes OpenMetrics, real
promtool turns it into TSDB blocks, a real Prometheus serves them, and a
query for a past date answers exactly what `chiprisk replay --at` says."""

import json
import subprocess
import urllib.parse
import urllib.request
from datetime import datetime, timezone

from e2e_harness import BIN, ROOT, free_port, wait_for

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
EVENTS = ROOT / "data" / "history.jsonl"


def unix(day):
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())


def replay(at):
    out = subprocess.run([BIN, "replay", str(EVENTS), "--at", at, "--format", "json"], check=True, capture_output=True)
    return {v["vendor"]: v for v in json.loads(out.stdout)["vendors"]}


def query_at(port, expr, t):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": t})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_backfilled_blocks_answer_a_past_date_exactly_like_replay(tmp_path):
    history = tmp_path / "history.om"
    with open(history, "wb") as out:
        subprocess.run([BIN, "backfill", str(EVENTS), "--from", "2022-10-03", "--to", "2026-06-29", "--step", "7d",
                        "--label", "namespace=risk"], check=True, stdout=out)
    tsdb = tmp_path / "tsdb"
    subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=8760h", str(history), str(tsdb)],
                   check=True, capture_output=True)
    (tmp_path / "prometheus.yml").write_text("global: {}\n")
    port = free_port()
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tsdb}",
                             "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))
    try:
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).status == 200, 60, "prometheus")
        # Steps are weekly from 2022-10-03: 2023-10-16 and 2025-07-14 are steps.
        for day in ["2023-10-16", "2025-07-14"]:
            t = unix(day)
            expected = replay(f"{day}T00:00:00Z")
            scores = {r["metric"]["vendor"]: float(r["value"][1])
                      for r in query_at(port, 'max without (pod, instance) (chiprisk_vendor_risk_score{job="chiprisk", namespace="risk"})', t)}
            assert scores == {v: e["score"] for v, e in expected.items()}, day
            components = {(r["metric"]["vendor"], r["metric"]["component"]): float(r["value"][1])
                          for r in query_at(port, "chiprisk_vendor_risk_component_pressure", t)}
            assert components == {(v, c): p for v, e in expected.items() for c, p in e["components"].items()}, day
            bans = {(r["metric"]["vendor"], r["metric"]["product"]) for r in query_at(port, "chiprisk_vendor_ban_info", t)}
            assert bans == {(v, b.get("product") or "all") for v, e in expected.items() for b in e["bans_in_force"]}, day
        assert any(e["score"] > 0 for e in replay("2023-10-16T00:00:00Z").values()), "a date with something to show"
    finally:
        prom.terminate()
        prom.wait(30)
