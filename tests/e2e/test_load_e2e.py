"""Sustained load on a real broker (Tansu) with /metrics and the API
scraped concurrently: memory stays flat, no request fails, nothing is lost.

The stream: a pool of distinct synthetic events, produced once (warm-up),
then redelivered again and again for CHIPRISK_LOAD_SECONDS (default 180)
at CHIPRISK_LOAD_RATE events/s (default 20,000; about a twentieth of the release
build's Kafka throughput on this machine, BENCHMARKS.md §4), with one
poison message per thousand. Redelivery is what at-least-once brings, and
it is the case where memory must not grow: every event is a duplicate,
absorbed by its id, and state is fixed. (New distinct events do grow the
state, by design: 216 bytes for a typical one, BENCHMARKS.md §8.)

It prints (pytest -s) and writes target/load-report.txt: RSS over time,
the achieved rate, scrape counts, and event latency quantiles.
"""

import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer

from e2e_harness import (
    ROOT,
    Chiprisk,
    accepted,
    distinct,
    produce,
    replay_scores,
    synthetic,
    wait_for,
)

sys.path.insert(0, str(ROOT / "benches" / "kafka"))
from bench import histogram, quantile  # noqa: E402

RELEASE_BIN = os.environ.get("CHIPRISK_RELEASE_BIN", str(ROOT / "target" / "release" / "chiprisk"))
SECONDS = int(os.environ.get("CHIPRISK_LOAD_SECONDS", "180"))
RATE = int(os.environ.get("CHIPRISK_LOAD_RATE", "20000"))
POOL = 50_000
SCRAPED = ["/metrics", "/api/v1/scores", "/api/v1/scores/nvidia", "/", "/readyz"]


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def metric(text, name):
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name) and not l.startswith("#"))


def scraper(port, stop, results):
    """Fetches every path in turn until told to stop; records status and time."""
    while not stop.is_set():
        for path in SCRAPED:
            t = time.time()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                    r.read()
                    results.append((path, r.status, time.time() - t))
            except Exception as e:  # counted as a failure
                results.append((path, repr(e), time.time() - t))
        time.sleep(0.05)


def test_sustained_redelivery_load_keeps_memory_flat_and_every_scrape_answered(broker, tmp_path):
    pool = synthetic(POOL, 31)
    poison = b'{"id":"load-poison","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["tsmc"]}'
    produce(broker, pool)
    app = Chiprisk(broker, tmp_path, "load", bin=RELEASE_BIN)
    report = []
    stop = threading.Event()
    results = []
    try:
        n = distinct(pool)
        wait_for(lambda: app.ready() and accepted(app) == n, 180, "the pool scored")
        scrapers = [threading.Thread(target=scraper, args=(app.port, stop, results)) for _ in range(2)]
        for s in scrapers:
            s.start()
        producer = Producer({"bootstrap.servers": broker, "linger.ms": 5, "queue.buffering.max.messages": 1_000_000})
        before = histogram(app.metrics())
        samples = [(0.0, rss_mib(app.proc.pid))]
        start = time.time()
        sent = 0
        next_sample = start + 5
        while time.time() - start < SECONDS:
            # Pace by the clock: produce what is due, 10 times a second.
            due = int((time.time() - start) * RATE)
            while sent < due:
                payload = poison if sent % 1000 == 999 else pool[sent % len(pool)]
                producer.produce("chiprisk.events", payload, key=f"k{sent % len(pool)}".encode())
                sent += 1
            producer.poll(0)
            if time.time() >= next_sample:
                samples.append((time.time() - start, rss_mib(app.proc.pid)))
                next_sample += 5
            time.sleep(0.1)
        assert producer.flush(60) == 0
        elapsed = time.time() - start
        poisoned = sent // 1000
        # Everything produced is consumed (duplicates counted as such, poison dead-lettered).
        wait_for(
            lambda: app.report()["summary"]["duplicates"] >= sent - poisoned and app.report()["summary"]["rejected"] >= poisoned,
            300,
            "the stream consumed",
        )
        samples.append((time.time() - start, rss_mib(app.proc.pid)))
        stop.set()
        for s in scrapers:
            s.join(30)

        summary = app.report()["summary"]
        metrics = app.metrics()
        failures = [r for r in results if r[1] != 200]
        lat = sorted(d for _, _, d in results)
        # Latency of the sustained phase only (the warm-up pool waited for chiprisk to start).
        buckets = sorted((le, n - before.get(le, 0.0)) for le, n in histogram(metrics).items())
        steady = [m for t, m in samples if t >= 30]
        report += [
            f"sustained load: {sent} events in {elapsed:.0f} s ({sent / elapsed:.0f}/s produced; target {RATE}/s), "
            f"pool {POOL} distinct, {poisoned} poison",
            f"consumed: accepted {summary['accepted']}, duplicates {summary['duplicates']}, rejected {summary['rejected']}",
            f"scrapes: {len(results)} ({', '.join(SCRAPED)}), failures {len(failures)}, "
            f"p50 {lat[len(lat) // 2] * 1000:.1f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms",
            f"event latency (sustained phase, from the histogram): p50 {quantile(0.5, buckets) * 1000:.0f} ms, "
            f"p99 {quantile(0.99, buckets) * 1000:.0f} ms",
            f"kafka errors: {metric(metrics, 'chiprisk_kafka_errors_total')}",
            "RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {m:.1f}" for t, m in samples),
        ]
        print("\n".join(report))
        (ROOT / "target" / "load-report.txt").write_text("\n".join(report) + "\n")

        assert not failures, failures[:5]
        assert summary["accepted"] == n, "redelivered events counted once"
        assert summary["rejected"] == poisoned
        assert summary["duplicates"] >= sent - poisoned, "at least once: every delivery counted"
        # Every delivery of the sustained phase (all redeliveries) had its latency taken.
        assert buckets[-1][1] >= sent - poisoned, (buckets[-1], sent, poisoned)
        assert app.scores() == replay_scores(pool)
        assert app.proc.poll() is None, "chiprisk is still running"
        # Flat: after warm-up, RSS never exceeds its first steady value by more than 10% + 16 MiB.
        assert max(steady) <= steady[0] * 1.10 + 16, samples
    finally:
        stop.set()
        app.stop()
