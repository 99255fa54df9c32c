#!/usr/bin/env python3
"""One /metrics scrape against a hostile history, and against the bundled
one, in the same run (BENCHMARKS.md §8).

The hostile history is the security review's: 600 export_ban events, each
naming 256 products, on nvidia and amd (about 1.7 MB). For each history
the release binary runs (`chiprisk run --events FILE`), is scraped once
it is ready, and reports the scrape's size and time and its peak RSS
(VmHWM). Usage: benches/hostile/scrape.py
"""

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from service import Service  # noqa: E402


def hostile_history(path):
    with open(path, "w") as f:
        for i in range(600):
            day = 1 + i // 60
            f.write(json.dumps({
                "id": f"hostile-{i}", "type": "export_ban",
                "occurred_at": f"2026-11-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                "vendors": ["nvidia", "amd"], "products": [f"P{i}-{p:03d}" for p in range(256)],
            }, separators=(",", ":")) + "\n")


def measure(events):
    with Service(events) as svc:
        ready_hwm = svc.memory_kib("VmHWM")
        started = time.perf_counter()
        body = svc.get("/metrics")
        took = time.perf_counter() - started
        hwm = svc.memory_kib("VmHWM")
        # What a client asks for: every vendor's explanation, and the page.
        answers = [len(svc.get(path)) for path in ("/api/v1/scores", "/")]
        api_hwm = svc.memory_kib("VmHWM")
    return len(body), took, hwm / 1024, ready_hwm / 1024, answers, api_hwm / 1024


def main():
    with tempfile.TemporaryDirectory() as d:
        hostile = Path(d) / "hostile.jsonl"
        hostile_history(hostile)
        base = measure(None)
        attack = measure(hostile)
    print("| history | scrape size | scrape time | peak RSS when ready | peak RSS after the scrape |")
    print("|---|---|---|---|---|")
    for name, (size, took, rss, ready, _, _) in [("bundled history", base), ("hostile (600 bans x 256 products)", attack)]:
        print(f"| {name} | {size:,} B | {took * 1000:.1f} ms | {ready:.1f} MiB | {rss:.1f} MiB |")
    print(f"ratio hostile/bundled: size {attack[0] / base[0]:.2f}, peak RSS {attack[2] / base[2]:.2f}")
    print()
    print("| history | /api/v1/scores | status page | peak RSS after both |")
    print("|---|---|---|---|")
    for name, (*_, (api, page), api_rss) in [("bundled history", base), ("hostile (600 bans x 256 products)", attack)]:
        print(f"| {name} | {api:,} B | {page:,} B | {api_rss:.1f} MiB |")
    print(f"ratio hostile/bundled after both: peak RSS {attack[5] / base[5]:.2f}")


if __name__ == "__main__":
    main()
