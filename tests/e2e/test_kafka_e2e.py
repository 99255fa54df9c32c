"""End-to-end tests of chiprisk against a real Kafka-protocol broker.

The broker is Tansu 0.6.0 (in memory, on a free loopback port, one per
test); events are produced and topics read with confluent-kafka, a client
chiprisk does not share code with; chiprisk runs as its own process, and its
scores are compared with `chiprisk replay` of the same events.

Run by scripts/test (which installs Tansu and confluent-kafka first):
    CHIPRISK_BIN=target/debug/chiprisk python -m pytest tests/e2e
"""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CHIPRISK_BIN", str(ROOT / "target" / "debug" / "chiprisk"))
TANSU = os.environ.get("TANSU_BIN", "tansu")
AT = "2026-06-01T00:00:00Z"
TOPICS = {"chiprisk.events": 2, "chiprisk.events.by-vendor": 4, "chiprisk.scores": 1, "chiprisk.dead-letter": 1}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout=60, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # the service may not be up yet
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def start_tansu(tmp_path):
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path / "tansu.log", "w")
    proc = subprocess.Popen(
        [TANSU, "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, 20, "tansu to listen")
    return proc, url


@pytest.fixture
def bare_broker(tmp_path):
    """A broker with no topics."""
    proc, url = start_tansu(tmp_path)
    yield url.removeprefix("tcp://")
    proc.terminate()
    proc.wait(10)


def create_topics(url):
    """chiprisk's topics, created by Tansu's own CLI."""
    for topic, partitions in TOPICS.items():
        subprocess.run(
            [TANSU, "topic", "create", topic, "--partitions", str(partitions), "--broker", url],
            check=True,
            capture_output=True,
        )


@pytest.fixture
def broker(tmp_path):
    """A broker with chiprisk's topics."""
    proc, url = start_tansu(tmp_path)
    create_topics(url)
    yield url.removeprefix("tcp://")
    proc.terminate()
    proc.wait(10)


class Chiprisk:
    """One chiprisk process consuming from the broker."""

    def __init__(self, brokers, tmp_path, name="a", group="chiprisk", create_topics=False, bin=BIN, session_timeout_ms=6000):
        self.port = free_port()
        env = dict(os.environ)
        env.update(
            {
                "CHIPRISK__KAFKA__BROKERS": brokers,
                "CHIPRISK__KAFKA__GROUP_ID": group,
                "CHIPRISK__KAFKA__CREATE_TOPICS": "true" if create_topics else "false",
                "CHIPRISK__KAFKA__REPARTITION_PARTITIONS": "3",
                "CHIPRISK__KAFKA__SESSION_TIMEOUT_MS": str(session_timeout_ms),
                "CHIPRISK__KAFKA__DRAIN_TIMEOUT_MS": "2000",
                "CHIPRISK__HTTP__LISTEN": f"127.0.0.1:{self.port}",
                "CHIPRISK_LOG": os.environ.get("CHIPRISK_E2E_LOG", "info"),
            }
        )
        self.log_path = tmp_path / f"chiprisk-{name}-{self.port}.log"
        self.proc = subprocess.Popen([bin, "run"], env=env, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"))

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            return r.status, r.read().decode()

    def ready(self):
        try:
            return self.get("/readyz")[0] == 200
        except Exception:
            return False

    def report(self, at=AT):
        return json.loads(self.get(f"/api/v1/scores?at={at}")[1])

    def scores(self, at=AT):
        return {v["vendor"]: v["score"] for v in self.report(at)["vendors"]}

    def metrics(self):
        return self.get("/metrics")[1]

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(20)

    def log(self):
        return self.log_path.read_text()


def produce(brokers, payloads):
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    for i, payload in enumerate(payloads):
        p.produce("chiprisk.events", payload, key=f"k{i}".encode())
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0, "all events delivered"


def read_topic(brokers, topic, idle=2.0):
    """Every record of a topic now: (value, headers dict). Reads every
    partition from its start until nothing arrives for `idle` seconds
    (Tansu 0.6.0 reports the high watermark as the last batch's base offset
    plus one, so watermarks cannot tell where a partition ends)."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": "e2e-reader", "enable.auto.commit": False})
    meta = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, pid, 0) for pid in meta.topics[topic].partitions])
    out = []
    last = time.time()
    while time.time() - last < idle:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            out.append((m.value(), {k: (v or b"").decode() for k, v in (m.headers() or [])}))
            last = time.time()
    c.close()
    return out


def replay(payloads, at=AT):
    """`chiprisk replay --format json` of the payloads."""
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
        f.write(b"\n".join(payloads) + b"\n")
    out = subprocess.run([BIN, "replay", f.name, "--format", "json", "--at", at], check=True, capture_output=True)
    os.unlink(f.name)
    return json.loads(out.stdout)


def replay_scores(payloads, at=AT):
    return {v["vendor"]: v["score"] for v in replay(payloads, at)["vendors"]}


def synthetic(n, seed):
    out = subprocess.run(
        ["cargo", "run", "-q", "--example", "generate", "--", str(n), str(seed)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return out.stdout.splitlines()


def scenario():
    return [line for line in (ROOT / "examples" / "scenario.jsonl").read_bytes().splitlines() if line.strip()]


# A few poison messages of different kinds, interleaved into the crash test's
# stream; the full bad-input matrix is bad_events() below.
POISON = [
    b"{not json",
    b"\xff\xfe\xfd",
    b'{"id":"x","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["tsmc"]}',
    b'{"id":"y","type":"market_signal","occurred_at":"2025-01-01T00:00:00Z","vendors":["amd"]}',
    b'{"id":"z","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"severity":7}',
    b"[1,2,3]",
    b"{" * 70000,
]


def distinct(payloads):
    return replay(payloads)["summary"]["accepted"]


def accepted(app):
    return app.report()["summary"]["accepted"]


def test_events_on_kafka_score_exactly_like_a_replay(broker, tmp_path):
    events = scenario() + synthetic(2000, 5)
    produce(broker, events)
    app = Chiprisk(broker, tmp_path)
    try:
        n = distinct(events)
        wait_for(lambda: app.ready() and accepted(app) == n, 90, f"{n} events scored")
        assert app.scores() == replay_scores(events)
        # The exported gauges say the same (as of the scrape, so compare with a tolerance for decay).
        now = replay_scores(events, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        text = app.metrics()
        for vendor, score in now.items():
            line = next(l for l in text.splitlines() if l.startswith(f'chiprisk_vendor_risk_score{{vendor="{vendor}"}}'))
            assert abs(float(line.split()[-1]) - score) < 0.01, (vendor, line, score)
        updates = read_topic(broker, "chiprisk.scores")
        assert updates, "score updates are published"
        u = json.loads(updates[-1][0])
        assert {"vendor", "score", "components", "event_id"} <= set(u)
    finally:
        app.stop()


def bad_events():
    """The bad-input matrix (tests/data/bad-events.json), expanded: the same
    cases tests/cli.rs feeds to `chiprisk replay`."""
    doc = json.loads((ROOT / "tests" / "data" / "bad-events.json").read_text())
    expand = lambda t: re.sub(r"<<(\d+)\*(.*?)>>", lambda m: m.group(2) * int(m.group(1)), t)
    return [
        (c["name"], c["reason"], c["message_contains"], bytes.fromhex(c["hex"]) if "hex" in c else expand(c["json"]).encode())
        for c in doc["cases"]
    ]


def test_every_bad_input_is_dead_lettered_with_its_reason_and_good_events_still_score(broker, tmp_path):
    good = scenario()
    bad = bad_events()
    assert len(bad) >= 50
    mixed = []
    cases = iter(bad)
    for i, e in enumerate(good):
        mixed.append(e)
        # Two bad messages after every good one, the rest at the end.
        mixed.extend(c[3] for c in (list(cases) if i + 1 == len(good) else [c for _, c in zip(range(2), cases)]))
    assert len(mixed) == len(good) + len(bad)
    produce(broker, mixed)
    app = Chiprisk(broker, tmp_path)
    try:
        n = distinct(good)
        wait_for(lambda: app.ready() and accepted(app) == n, 90, "good events scored")
        assert app.scores() == replay_scores(good)
        wait_for(lambda: len(read_topic(broker, "chiprisk.dead-letter")) >= len(bad), 30, "dead letters")
        dead = read_topic(broker, "chiprisk.dead-letter")
        assert len(dead) == len(bad), [h for _, h in dead]
        by_bytes = {v: h for v, h in dead}
        for name, reason, fragment, payload in bad:
            h = by_bytes.get(payload)
            assert h is not None, f"{name}: not dead-lettered with its original bytes"
            assert h["chiprisk-reason"] == reason, (name, h)
            assert fragment in h["chiprisk-error"], (name, h["chiprisk-error"])
            assert h["chiprisk-source-topic"] == "chiprisk.events"
            assert int(h["chiprisk-source-offset"]) >= 0
        assert app.report()["summary"]["rejected"] == len(bad)
        metrics = app.metrics()
        for reason in {r for _, r, _, _ in bad}:
            count = sum(1 for _, r, _, _ in bad if r == reason)
            assert f'chiprisk_kafka_dead_lettered_total{{reason="{reason}"}} {count}' in metrics, reason
    finally:
        app.stop()


def test_kill_9_mid_stream_then_restart_loses_nothing_and_counts_nothing_twice(broker, tmp_path):
    events = synthetic(6000, 9)
    produce(broker, events[:3000])
    app = Chiprisk(broker, tmp_path, "first")
    wait_for(lambda: accepted(app) >= 1000, 90, "some progress")
    app.stop(signal.SIGKILL)
    produce(broker, events[3000:])
    again = Chiprisk(broker, tmp_path, "second")
    try:
        n = distinct(events)
        wait_for(lambda: again.ready() and accepted(again) == n, 120, "all events after restart")
        assert again.scores() == replay_scores(events)
        summary = again.report()["summary"]
        assert summary["accepted"] == n, summary
    finally:
        again.stop()


def test_two_replicas_in_one_group_split_the_vendors_and_one_can_take_over(broker, tmp_path):
    events = scenario() + synthetic(3000, 13)
    produce(broker, events)
    a = Chiprisk(broker, tmp_path, "a")
    b = Chiprisk(broker, tmp_path, "b")
    try:
        expected = replay_scores(events)

        def union():
            if not (a.ready() and b.ready()):
                return None
            sa, sb = a.scores(), b.scores()
            # Until the second member joins, the first may own everything.
            if not sa or not sb or set(sa) & set(sb) or set(sa) | set(sb) != set(expected):
                return None
            return {**sa, **sb}

        together = wait_for(lambda: (lambda u: u if u == expected else None)(union()), 120, "both replicas to agree with replay")
        assert together == expected
        assert a.scores() and b.scores(), "both replicas own some vendors"
        b.stop()
        wait_for(lambda: a.ready() and a.scores() == expected, 120, "the remaining replica to own every vendor")
    finally:
        a.stop()
        if b.proc.poll() is None:
            b.stop()


def test_missing_topics_are_created_with_the_admin_api(bare_broker, tmp_path):
    app = Chiprisk(bare_broker, tmp_path, create_topics=True)
    try:
        wait_for(app.ready, 60, "ready after creating topics")
        c = Consumer({"bootstrap.servers": bare_broker, "group.id": "e2e-meta"})
        topics = c.list_topics(timeout=10).topics
        c.close()
        for name in TOPICS:
            assert name in topics, name
            assert len(topics[name].partitions) == 3, name
        produce(bare_broker, scenario())
        wait_for(lambda: accepted(app) == distinct(scenario()), 60, "events scored")
        assert app.scores() == replay_scores(scenario())
    finally:
        app.stop()


def test_missing_topics_at_start_are_waited_for_and_reported(bare_broker, tmp_path):
    app = Chiprisk(bare_broker, tmp_path, create_topics=False)
    try:
        wait_for(lambda: "is missing" in app.log(), 30, "a log line naming the missing topic")
        assert app.get("/healthz")[0] == 200
        assert not app.ready(), "not ready without its topics"
        url = f"tcp://{bare_broker}"
        for topic, partitions in TOPICS.items():
            subprocess.run([TANSU, "topic", "create", topic, "--partitions", str(partitions), "--broker", url], check=True, capture_output=True)
        produce(bare_broker, scenario())
        wait_for(lambda: app.ready() and accepted(app) == distinct(scenario()), 90, "recovered by itself")
        assert app.scores() == replay_scores(scenario())
    finally:
        app.stop()


def test_a_broker_that_stops_answering_for_a_while_loses_nothing(tmp_path):
    """The real broker frozen (SIGSTOP) for 10 s mid-stream, then resumed:
    chiprisk stays up and healthy meanwhile, and afterwards every event is
    scored once. (Tansu's in-memory storage does not survive a restart, so
    freezing is how this broker can be "down for a while" and come back.)

    The session timeout is longer than the freeze: Tansu 0.6.0 never evicts
    a member whose session expired while it was frozen, so after a longer
    freeze its group cannot re-form (JoinGroup keeps naming the dead member
    as leader; SyncGroup answers "rebalance in progress" or "unknown member"
    forever). A Kafka broker evicts the member and the group re-forms."""
    proc, url = start_tansu(tmp_path)
    app = None
    try:
        create_topics(url)
        brokers = url.removeprefix("tcp://")
        events = synthetic(4000, 13)
        produce(brokers, events[:2000])
        app = Chiprisk(brokers, tmp_path, session_timeout_ms=30000)
        wait_for(lambda: accepted(app) >= 500, 90, "some progress")
        proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(10)
            assert app.get("/healthz")[0] == 200
            assert app.proc.poll() is None, "chiprisk is still running"
        finally:
            proc.send_signal(signal.SIGCONT)
        produce(brokers, events[2000:])
        n = distinct(events)
        wait_for(lambda: app.ready() and accepted(app) == n, 180, "every event after the broker came back")
        assert app.scores() == replay_scores(events)
    finally:
        if app is not None:
            app.stop()
        proc.terminate()
        proc.wait(10)
