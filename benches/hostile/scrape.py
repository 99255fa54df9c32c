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
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CHIPRISK_RELEASE_BIN", str(ROOT / "target" / "release" / "chiprisk"))


def hostile_history(path):
    with open(path, "w") as f:
        for i in range(600):
            day = 1 + i // 60
            f.write(json.dumps({
                "id": f"hostile-{i}", "type": "export_ban",
                "occurred_at": f"2026-11-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
                "vendors": ["nvidia", "amd"], "products": [f"P{i}-{p:03d}" for p in range(256)],
            }, separators=(",", ":")) + "\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(events):
    port = free_port()
    env = dict(os.environ, CHIPRISK__HTTP__LISTEN=f"127.0.0.1:{port}")
    args = [BIN, "run"] + (["--events", str(events)] if events else [])
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.1)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        ready_hwm = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:"))
        started = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
            body = r.read()
        took = time.perf_counter() - started
        status = Path(f"/proc/{proc.pid}/status").read_text()
        hwm = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:"))
        # What a client asks for: every vendor's explanation, and the page.
        answers = []
        for path in ("/api/v1/scores", "/"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as r:
                answers.append(len(r.read()))
        status = Path(f"/proc/{proc.pid}/status").read_text()
        api_hwm = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:"))
        return len(body), took, hwm / 1024, ready_hwm / 1024, answers, api_hwm / 1024
    finally:
        proc.terminate()
        proc.wait(20)


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
