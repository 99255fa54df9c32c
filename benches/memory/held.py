#!/usr/bin/env python3
"""Bytes of memory per event held, for sizing (BENCHMARKS.md §8).

Runs `chiprisk replay` (the release build) on N generated events of two
shapes and on an empty file, all in the same run, and reports the peak
RSS above the empty file's, per event:
  typical: the synthetic events of `cargo run --example generate` (~300 B);
  largest: every free-text field at its limit (limits.max_text_chars =
           1024 characters of title, actor and source_url), 64 products of
           64 characters.
Usage: benches/memory/held.py [N]   (default 100000)
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CHIPRISK_RELEASE_BIN", str(ROOT / "target" / "release" / "chiprisk"))


def peak_rss_kib(path):
    """Peak RSS of one `chiprisk replay` of the file, in KiB (wait4's
    rusage of that one child; it includes this script's RSS at the fork,
    which the empty file's reading measures and the caller subtracts)."""
    proc = subprocess.Popen([BIN, "replay", str(path), "--format", "json"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"replay failed on {path}"
    return usage.ru_maxrss


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
        # Line by line: a forked child's peak RSS starts at its parent's.
        with open(big, "w") as f:
            for i in range(n):
                f.write(largest(i) + "\n")
        floor = peak_rss_kib(empty)
        rows = []
        for name, path in [("typical", typical), ("largest", big)]:
            rss = peak_rss_kib(path)
            size = path.stat().st_size / n
            rows.append((name, size, rss, (rss - floor) * 1024 / n))
    print(f"events: {n}; empty file: peak RSS {floor / 1024:.1f} MiB")
    print("| events | bytes per event on the wire | peak RSS | bytes held per event |")
    print("|---|---|---|---|")
    for name, size, rss, per in rows:
        print(f"| {name} | {size:,.0f} | {rss / 1024:.1f} MiB | {per:,.0f} |")


if __name__ == "__main__":
    main()
