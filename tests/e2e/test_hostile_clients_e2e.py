"""Hostile clients against the release binary, as the chart runs it
(issue 21): the default 256 API slots, the probes on their own listener
(`http.probe_listen`, the chart's port 9465). More clients than slots
pipeline hundreds of requests and never read a byte, for 30 s, reopening
whenever the server drops them; meanwhile `/healthz` and `/readyz` must
answer 200 within a second, every time they are asked."""

import os
import socket
import subprocess
import threading
import time
import urllib.request

from e2e_harness import ROOT, free_port, wait_for

RELEASE_BIN = os.environ.get("CHIPRISK_RELEASE_BIN", str(ROOT / "target" / "release" / "chiprisk"))
SIEGE = 30.0
CLIENTS = 300  # more than the 256 slots: the rest wait in the listen backlog
PIPELINE = b"GET /api/v1/scores HTTP/1.1\r\nHost: x\r\n\r\n" * 400


def hostile(port, until, connections):
    """Writes pipelined requests and never reads; reconnects when dropped."""
    while time.time() < until:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            time.sleep(0.1)
            continue
        connections.append(1)
        s.settimeout(max(0.1, until - time.time()))
        try:
            s.sendall(PIPELINE)  # blocks once the server stops reading
            while time.time() < until:
                s.sendall(b"\r\n")
                time.sleep(0.2)
        except OSError:
            pass
        finally:
            s.close()


def status(port, path, timeout):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status
    except Exception as e:  # a timeout is the failure this test looks for
        return repr(e)


def test_probes_answer_within_a_second_while_hostile_clients_hold_every_api_slot(tmp_path):
    api, probes = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIPRISK")}
    env.update({"CHIPRISK__HTTP__LISTEN": f"127.0.0.1:{api}", "CHIPRISK__HTTP__PROBE_LISTEN": f"127.0.0.1:{probes}"})
    app = subprocess.Popen([RELEASE_BIN, "run"], env=env, stdout=subprocess.DEVNULL,
                           stderr=open(tmp_path / "chiprisk.log", "w"))
    try:
        wait_for(lambda: status(probes, "/readyz", 2) == 200, 60, "ready over the bundled history")
        assert status(api, "/api/v1/status", 2) == 200, "an ordinary client is served before the siege"
        until = time.time() + SIEGE
        connections = []
        threads = [threading.Thread(target=hostile, args=(api, until, connections), daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(2)
        assert status(api, "/api/v1/status", 2) != 200, "the siege is real: every API slot is held"
        answers = []
        while time.time() < until - 0.5:
            for path in ("/healthz", "/readyz"):
                started = time.time()
                answers.append((path, status(probes, path, 1.0), time.time() - started))
            time.sleep(0.25)
        late = [a for a in answers if a[1] != 200]
        assert not late, f"{len(late)} of {len(answers)} probes unanswered within 1 s: {late[:5]}"
        assert len(answers) >= 80, len(answers)
        for t in threads:
            t.join(10)
        assert app.poll() is None, "the replica is still running"
        # Once the siege ends, the API serves again.
        wait_for(lambda: status(api, "/api/v1/status", 2) == 200, 30, "the API served after the siege")
        print(f"{len(answers)} probes, slowest {max(a[2] for a in answers) * 1000:.0f} ms; {len(connections)} hostile connections")
    finally:
        app.terminate()
        app.wait(20)
