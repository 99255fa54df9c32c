"""Kafka benchmarks against a real broker (Tansu 0.6.0, in memory, loopback).

    target/test-venv/bin/python benches/kafka/bench.py [N]

Measures, in one run on one machine:
  1. throughput: a plain rdkafka consume-only loop over the events topic
     (examples/consume_only.rs) with chiprisk's consumer settings; the same
     loop that also decodes, validates and applies every event on its one
     thread: the floor under any design (no outputs, no offsets, no HTTP);
     against chiprisk consuming the same topic as a first start (every
     event new: counted, offsets stored), each from process start to the
     last event (chiprisk: until /readyz answers 200, which it does once
     it has read the whole log); with the CPU time each used, and
     chiprisk's peak RSS;
  2. latency at 1,000 events/s, 8 s after the bulk phase: chiprisk's own
     histogram chiprisk_event_latency_seconds, from each event's Kafka
     timestamp (set by the producer) to its effect on the scoreboard (and
     so on /metrics and the API);
  3. rebuild: time for a restarted chiprisk to re-read the N + 10,000
     events as history (until /readyz answers 200), against the floor's
     rate.
Prints one JSON object. Numbers go to BENCHMARKS.md by hand, with the method.
"""

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
N = int(sys.argv[1]) if __name__ == "__main__" and len(sys.argv) > 1 else 200_000
TANSU = os.environ.get("TANSU_BIN", "tansu")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build():
    subprocess.run(["cargo", "build", "--release", "--bins", "--examples", "-q"], cwd=ROOT, check=True)
    return ROOT / "target" / "release"


def start_broker():
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [TANSU, "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    brokers = f"127.0.0.1:{port}"
    keep = {"retention.ms": "-1", "retention.bytes": "-1"}
    topics = [NewTopic("chiprisk.events", 4, 1, config=keep), NewTopic("chiprisk.scores", 1, 1), NewTopic("chiprisk.dead-letter", 1, 1)]
    admin = AdminClient({"bootstrap.servers": brokers})  # kept alive until the topics exist
    for future in admin.create_topics(topics, operation_timeout=10).values():
        future.result()
    return proc, brokers


def produce(brokers, lines, rate=None, sent=None):
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 5 if rate is None else 0})
    sent = {} if sent is None else sent
    start = time.time()
    for i, line in enumerate(lines):
        if rate is not None:
            due = start + i / rate
            while time.time() < due:
                time.sleep(max(0.0, due - time.time()))
            sent[json.loads(line)["id"]] = time.time()
        while True:
            try:
                p.produce("chiprisk.events", line)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(60)
    return sent


class Chiprisk:
    def __init__(self, bin_dir, brokers, group):
        self.port = free_port()
        env = dict(os.environ)
        env.update({
            "CHIPRISK__KAFKA__BROKERS": brokers,
            "CHIPRISK__KAFKA__GROUP_ID": group,
            "CHIPRISK__KAFKA__CREATE_TOPICS": "false",
            "CHIPRISK__HTTP__LISTEN": f"127.0.0.1:{self.port}",
            "CHIPRISK_LOG": "warn",
        })
        # Extra settings to compare, e.g. CHIPRISK_BENCH_ENV='{"CHIPRISK__KAFKA__BATCH_SIZE": "2000"}'
        env.update(json.loads(os.environ.get("CHIPRISK_BENCH_ENV", "{}")))
        self.started = time.time()
        self.proc = subprocess.Popen([str(bin_dir / "chiprisk"), "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return r.status, r.read()

    def accepted(self):
        try:
            return json.loads(self.get("/api/v1/status")[1])["summary"]["accepted"]
        except Exception:  # 503 while rebuilding
            return -1

    def ready(self):
        try:
            return self.get("/readyz")[0] == 200
        except Exception:
            return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def cpu_seconds(pid):
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def histogram(text, name="chiprisk_event_latency_seconds"):
    """Cumulative bucket counts of a histogram: {le: count}."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
    return out


def quantile(q, buckets):
    """Like PromQL histogram_quantile: linear within the bucket."""
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_n = 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / max(n - prev_n, 1e-9))
        prev_le, prev_n = le, n
    return prev_le


def main():
    bin_dir = build()
    broker, brokers = start_broker()
    try:
        lines = subprocess.run([str(bin_dir / "examples" / "generate"), str(N), "77"], check=True, capture_output=True).stdout.splitlines()
        t = time.time()
        produce(brokers, lines)
        produce_s = time.time() - t

        def consume_only(*mode):
            cmd = [str(bin_dir / "examples" / "consume_only"), brokers, "chiprisk.events", str(N), *mode]
            children, broker_before = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(broker.pid)
            out = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            out["cpu_seconds"] = {
                "consumer": round(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 2),
                "broker": round(cpu_seconds(broker.pid) - broker_before, 2),
            }
            return out

        plain = consume_only()
        # The floor under any design: read + decode + validate + apply on
        # one thread, with no outputs, offsets or HTTP.
        floor = consume_only("score")

        broker_cpu = cpu_seconds(broker.pid)
        app = Chiprisk(bin_dir, brokers, "bench")
        while not app.ready():
            time.sleep(0.02)
        chiprisk_s = time.time() - app.started
        assert app.accepted() == N, app.accepted()
        cpu = {"chiprisk": round(cpu_seconds(app.proc.pid), 2), "broker": round(cpu_seconds(broker.pid) - broker_cpu, 2)}
        peak_rss_mib = round(peak_rss_kib(app.proc.pid) / 1024, 1)

        # Latency at 1,000 events/s, live: chiprisk's own histogram
        # chiprisk_event_latency_seconds (from each event's Kafka timestamp,
        # set by the producer, to its effect on the scoreboard).
        before = histogram(app.get("/metrics")[1].decode())
        live = subprocess.run([str(bin_dir / "examples" / "generate"), "10000", "78"], check=True, capture_output=True).stdout.splitlines()
        time.sleep(8)  # the broker settles after the bulk phase
        produce(brokers, live, rate=1000)
        while app.accepted() < N + 10000:
            time.sleep(0.05)
        after = histogram(app.get("/metrics")[1].decode())
        delta = [(le, after[le] - before.get(le, 0)) for le in sorted(after)]
        app.stop()

        # Rebuild on restart: everything is history now.
        again = Chiprisk(bin_dir, brokers, "bench")
        while not again.ready():
            time.sleep(0.02)
        rebuild_s = time.time() - again.started
        rebuilt = again.accepted()
        rebuild_cpu = round(cpu_seconds(again.proc.pid), 2)
        again.stop()

        floor_rate = floor["per_second"]
        floor_cpu_us = floor["cpu_seconds"]["consumer"] / N * 1e6
        print(json.dumps({
            "events": N,
            "produce_seconds": round(produce_s, 2),
            "consume_only_chiprisk_settings": plain,
            "floor_one_thread": floor,
            "floor_ratio_to_plain": round(floor_rate / plain["per_second"], 3),
            "chiprisk_seconds": round(chiprisk_s, 2),
            "chiprisk_per_second": round(N / chiprisk_s),
            "throughput_ratio_to_floor": round((N / chiprisk_s) / floor_rate, 3),
            "cpu_seconds_during_throughput": cpu,
            "cpu_us_per_event": {"chiprisk": round(cpu["chiprisk"] / N * 1e6, 2), "floor": round(floor_cpu_us, 2)},
            "cpu_ratio_to_floor": round((cpu["chiprisk"] / N * 1e6) / floor_cpu_us, 3),
            "chiprisk_peak_rss_mib": peak_rss_mib,
            "latency_samples": delta[-1][1],
            "latency_ms_p50": round(quantile(0.5, delta) * 1000, 1),
            "latency_ms_p99": round(quantile(0.99, delta) * 1000, 1),
            "latency_buckets": {str(le): n for le, n in delta},
            "rebuild_events": rebuilt,
            "rebuild_seconds": round(rebuild_s, 2),
            "rebuild_per_second": round(rebuilt / rebuild_s),
            "rebuild_ratio_to_floor": round((rebuilt / rebuild_s) / floor_rate, 3),
            "rebuild_cpu_seconds": rebuild_cpu,
        }, indent=2))
    finally:
        broker.terminate()


if __name__ == "__main__":
    main()
