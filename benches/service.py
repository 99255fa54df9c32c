"""The release binary run as the service for a benchmark: `chiprisk run`
on a free loopback port, ready once `/readyz` answers 200; its memory read
from /proc. Shared by benches/memory/held.py and benches/hostile/scrape.py."""

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("CHIPRISK_RELEASE_BIN", str(ROOT / "target" / "release" / "chiprisk"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """`with Service(events, ready_within) as s:` the service over `events`
    (None: the bundled history), ready; stopped on leaving."""

    def __init__(self, events, ready_within=120):
        self.events, self.ready_within, self.port = events, ready_within, free_port()

    def __enter__(self):
        env = dict(os.environ, CHIPRISK__HTTP__LISTEN=f"127.0.0.1:{self.port}")
        args = [BIN, "run"] + (["--events", str(self.events)] if self.events else [])
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + self.ready_within
        while time.time() < deadline:
            try:
                if self.get_status("/readyz") == 200:
                    return self
            except Exception:
                time.sleep(0.1)
        self.__exit__()
        raise SystemExit(f"not ready after {self.ready_within} s: {self.events}")

    def __exit__(self, *_):
        self.proc.terminate()
        self.proc.wait(20)

    def get_status(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
            return r.status

    def get(self, path):
        """The body of a GET, however long it takes (up to a minute)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=60) as r:
            return r.read()

    def memory_kib(self, field):
        """A /proc/PID/status field in KiB: VmHWM (peak RSS) or VmRSS."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        return next(int(l.split()[1]) for l in status if l.startswith(field + ":"))
