#!/usr/bin/env python3
"""Bytes of memory per event held, for sizing (BENCHMARKS.md §8).

Runs the release binary as the service (`chiprisk run --events FILE`) on
N generated events of two shapes and on an empty file, all in the same
run, and reads its memory once it is ready (the whole file applied):
  peak: VmHWM, the most the process held at any time while rebuilding,
        which is what a memory limit must allow;
  now:  VmRSS once ready, what it goes on holding.
Each is reported above the empty file's, per event. The shapes:
  typical: the synthetic events of `cargo run --example generate` (~330 B);
  largest: every free-text field at its limit (limits.max_text_chars =
           1024 characters of title, actor and source_url) and 64 distinct
           products of 64 characters on an export ban: every event brings
           64 product names never seen before.
Usage: benches/memory/held.py [N]   (default 100000)
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from service import ROOT, Service  # noqa: E402


def memory_when_ready(path):
    """(VmHWM, VmRSS) in KiB of `chiprisk run --events path` once ready."""
    with Service(path, ready_within=1800) as svc:
        return svc.memory_kib("VmHWM"), svc.memory_kib("VmRSS")


def largest(i):
    text = lambda c: (c * 1024)[:1024]  # noqa: E731
    return json.dumps({
        "id": f"big-{i:09d}", "type": "export_ban", "occurred_at": f"2024-01-01T00:00:{i % 60:02d}Z",
        "vendors": ["nvidia"], "products": [f"P{i}-{p}".ljust(64, "x") for p in range(64)],
        "severity": 0.5, "actor": text("a"), "title": text("t"),
        "source_url": "https://example.org/" + "u" * 1000,
    }, separators=(",", ":"))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        empty = d / "empty.jsonl"
        empty.write_text("")
        typical = d / "typical.jsonl"
        with open(typical, "wb") as f:
            subprocess.run(["cargo", "run", "-q", "--example", "generate", "--", str(n), "7"], cwd=ROOT,
                           stdout=f, check=True)
        big = d / "largest.jsonl"
        with open(big, "w") as f:
            for i in range(n):
                f.write(largest(i) + "\n")
        floor = memory_when_ready(empty)
        rows = []
        for name, path in [("typical", typical), ("largest", big)]:
            peak, now = memory_when_ready(path)
            size = path.stat().st_size / n
            rows.append((name, size, peak, now, (peak - floor[0]) * 1024 / n, (now - floor[1]) * 1024 / n))
    print(f"events: {n}; empty file: peak {floor[0] / 1024:.1f} MiB, now {floor[1] / 1024:.1f} MiB")
    print("| events | bytes per event on the wire | peak RSS | RSS when ready | bytes per event (peak) | (when ready) |")
    print("|---|---|---|---|---|---|")
    for name, size, peak, now, per_peak, per_now in rows:
        print(f"| {name} | {size:,.0f} | {peak / 1024:.1f} MiB | {now / 1024:.1f} MiB | {per_peak:,.0f} | {per_now:,.0f} |")


if __name__ == "__main__":
    main()
