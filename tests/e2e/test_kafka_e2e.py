"""End-to-end tests of chiprisk against a real Kafka-protocol broker.

The broker is Tansu 0.6.0 (in memory, on a free loopback port, one per
test); events are produced and topics read with confluent-kafka, a client
chiprisk does not share code with; chiprisk runs as its own process, and its
scores are compared with `chiprisk replay` of the same events.

Run by scripts/test (which installs Tansu and confluent-kafka first):
    CHIPRISK_BIN=target/debug/chiprisk python -m pytest tests/e2e
"""

import json
import re
import signal
import subprocess
import time

from confluent_kafka import Consumer, Producer

from e2e_harness import (
    AT,
    CATALOG,
    Chiprisk,
    POISON,
    TOPICS,
    accepted,
    bad_events,
    create_topics,
    distinct,
    produce,
    read_topic,
    replay,
    replay_scores,
    scenario,
    start_tansu,
    synthetic,
    topic_config,
    vendor_series,
    wait_for,
)


def test_events_on_kafka_score_exactly_like_a_replay(broker, tmp_path):
    events = scenario() + synthetic(2000, 5)
    produce(broker, events)
    app = Chiprisk(broker, tmp_path)
    try:
        wait_for(app.ready, 90, "ready")
        # Ready means the whole log was read: nothing more to wait for.
        assert accepted(app) == distinct(events)
        assert app.scores() == replay_scores(events)
        # The exported gauges say the same (as of the scrape, so compare with a tolerance for decay).
        now = replay_scores(events, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        text = app.metrics()
        assert vendor_series(text) == set(CATALOG)
        for vendor, score in now.items():
            line = next(l for l in text.splitlines() if l.startswith(f'chiprisk_vendor_risk_score{{vendor="{vendor}"}}'))
            assert abs(float(line.split()[-1]) - score) < 0.01, (vendor, line, score)
        updates = wait_for(lambda: read_topic(broker, "chiprisk.scores"), 30, "score updates")
        u = json.loads(updates[-1][0])
        assert {"vendor", "score", "components", "event_id"} <= set(u)
        assert u["vendor"] in CATALOG
    finally:
        app.stop()



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
        wait_for(app.ready, 90, "ready")
        assert accepted(app) == distinct(good)
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
    wait_for(app.ready, 90, "ready")
    app.stop(signal.SIGKILL)
    produce(broker, events[3000:])
    again = Chiprisk(broker, tmp_path, "second")
    try:
        wait_for(again.ready, 120, "ready after the restart")
        n = distinct(events)
        assert accepted(again) == n
        assert again.scores() == replay_scores(events)
    finally:
        again.stop()


def keyed_any_way(events):
    """The events as an independent producer might key them: by id, by
    vendor, by nothing, by a counter."""
    out = []
    for i, e in enumerate(events):
        try:
            doc = json.loads(e)
            key = [doc.get("id"), (doc.get("vendors") or ["x"])[0], None, f"k{i}"][i % 4]
        except Exception:
            key = None
        out.append((e, key))
    return out


def produce_keyed(brokers, pairs):
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    for i, (payload, key) in enumerate(pairs):
        p.produce("chiprisk.events", payload, key=None if key is None else str(key).encode())
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0, "all events delivered"


class Poller:
    """Polls a replica every 0.1 s in a thread: /readyz, the scores API,
    one vendor, the status page and /metrics; keeps every answer."""

    PATHS = ["/readyz", f"/api/v1/scores?at={AT}", f"/api/v1/scores/nvidia?at={AT}", "/", "/metrics"]

    def __init__(self, app):
        import threading

        self.app, self.answers, self.stop = app, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            for path in self.PATHS:
                self.answers.append((path, *self.app.answer(path)))
            time.sleep(0.1)

    def done(self):
        self.stop.set()
        self.thread.join(30)
        return self.answers


def partial(answers, expected):
    """Every answer that shows something other than the whole, right state:
    a score set other than the expected one, or vendor series while not
    ready. Refused connections (the process starting) are not answers."""
    bad = []
    for path, status, body in answers:
        if status is None:
            continue
        if path.startswith("/api/v1/scores?"):
            if status == 200 and {v["vendor"]: v["score"] for v in json.loads(body)["vendors"]} != expected:
                bad.append((path, status, body[:200]))
            elif status == 503 and "rebuilding" not in json.loads(body)["error"]:
                bad.append((path, status, body[:200]))
        elif path.startswith("/api/v1/scores/nvidia"):
            if status == 200 and json.loads(body)["score"] != expected["nvidia"]:
                bad.append((path, status, body[:200]))
        elif path == "/":
            if status == 200 and any(f'data-vendor="{v}"' not in body for v in CATALOG):
                bad.append((path, status, body[:200]))
        elif path == "/metrics":
            ready = re.search(r"^chiprisk_ready 1$", body, re.M) is not None
            if (ready and vendor_series(body) != set(CATALOG)) or (not ready and vendor_series(body)):
                bad.append((path, status, "vendors: " + ",".join(sorted(vendor_series(body)))))
        if status not in (200, 503):
            bad.append((path, status, body[:200]))
    return bad


def test_two_replicas_each_answer_for_every_vendor_and_restarts_show_no_partial_state(broker, tmp_path):
    good = scenario() + synthetic(20000, 13)
    bad = POISON[:4]
    stream = list(good)
    for i, b in enumerate(bad):
        stream.insert(100 + i * 3000, b)
    produce_keyed(broker, keyed_any_way(stream))
    expected = replay_scores(good)
    expected_report = replay(good)
    a = Chiprisk(broker, tmp_path, "a")
    b = Chiprisk(broker, tmp_path, "b")
    replicas = [a, b]
    try:
        # 1. Complete answers, from both, bit for bit those of a replay.
        for app in (a, b):
            wait_for(app.ready, 120, f"replica {app.port} ready")
        for app in (a, b):
            report = app.report()
            assert report["vendors"] == expected_report["vendors"], "every vendor, bit for bit as replay"
            for vendor in CATALOG:
                one = json.loads(app.get(f"/api/v1/scores/{vendor}?at={AT}")[1])
                assert one == next(v for v in expected_report["vendors"] if v["vendor"] == vendor), vendor
            page = app.get("/")[1]
            assert all(f'data-vendor="{v}"' in page for v in CATALOG)
            assert vendor_series(app.metrics()) == set(CATALOG)
        dead_keys = lambda: sorted(h["chiprisk-source-offset"] + "/" + h["chiprisk-source-partition"] for _, h in read_topic(broker, "chiprisk.dead-letter"))
        wait_for(lambda: len(set(dead_keys())) == len(bad), 30, "every bad message dead-lettered")
        time.sleep(6)  # one auto-commit interval: the group's offsets cover what both replicas did
        dead_before = dead_keys()

        # 2. kill -9 of one: the other stays ready with the same answers; the
        #    restarted one answers 503 until it has rebuilt, never a partial state.
        watch_a = Poller(a)
        b.stop(signal.SIGKILL)
        b2 = Chiprisk(broker, tmp_path, "b2")
        replicas.append(b2)
        watch_b2 = Poller(b2)
        wait_for(b2.ready, 120, "the restarted replica ready")
        time.sleep(1)
        restarted = watch_b2.done()
        assert not partial(restarted, expected), partial(restarted, expected)[:5]
        assert any(status == 503 for _, status, _ in restarted), "the polls saw the rebuild"
        assert b2.scores() == expected

        # 3. A rolling restart of the other (SIGTERM, then a new one).
        watch_b2 = Poller(b2)
        a.stop()
        a2 = Chiprisk(broker, tmp_path, "a2")
        replicas.append(a2)
        wait_for(a2.ready, 120, "the rolled replica ready")
        untouched = watch_a.done() + watch_b2.done()
        answered = [x for x in untouched if x[1] is not None]
        # a's own answers stop when it is stopped; b2's continue throughout.
        assert not partial(untouched, expected), partial(untouched, expected)[:5]
        assert all(status == 200 for _, status, _ in answered), [x[:2] for x in answered if x[1] != 200][:5]
        assert a2.scores() == expected

        # 4. Restarts neither dead-letter nor publish history again.
        time.sleep(3)
        assert dead_keys() == dead_before, "no bad message dead-lettered again by a restart"
        text = a2.metrics()
        arrived = sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("chiprisk_events_total{"))
        assert arrived == 0, "a rebuild is not traffic"
        assert float(re.search(r"^chiprisk_rebuild_messages_total (\S+)$", text, re.M).group(1)) == len(stream)
    finally:
        for app in replicas:
            if app.proc.poll() is None:
                app.stop()


def test_an_event_topic_that_deletes_history_is_refused_unless_the_loss_is_accepted(bare_broker, tmp_path):
    url = f"tcp://{bare_broker}"
    create_topics(url, events_config={"retention.ms": "86400000"})
    produce(bare_broker, scenario())
    refused = Chiprisk(bare_broker, tmp_path, "refused")
    try:
        assert refused.proc.wait(60) != 0, "refuses to start"
    except subprocess.TimeoutExpired:
        refused.stop()
        raise AssertionError("still running on a topic that deletes history")
    log = refused.log()
    assert "chiprisk.events" in log and "retention.ms=86400000" in log and "kafka.accept_history_loss" in log, log[-2000:]
    accepting = Chiprisk(bare_broker, tmp_path, "accepting", env={"CHIPRISK__KAFKA__ACCEPT_HISTORY_LOSS": "true"})
    try:
        wait_for(accepting.ready, 60, "ready with the loss accepted")
        assert accepting.scores() == replay_scores(scenario())
    finally:
        accepting.stop()


def test_missing_topics_are_created_keeping_every_event(bare_broker, tmp_path):
    app = Chiprisk(bare_broker, tmp_path, create_topics=True)
    try:
        wait_for(app.ready, 60, "ready after creating topics")
        c = Consumer({"bootstrap.servers": bare_broker, "group.id": "e2e-meta"})
        topics = c.list_topics(timeout=10).topics
        c.close()
        for name in TOPICS:
            assert name in topics, name
            assert len(topics[name].partitions) == 3, name
        events = topic_config(bare_broker, "chiprisk.events")
        assert events.get("retention.ms") == "-1" and events.get("retention.bytes") == "-1", events
        assert topic_config(bare_broker, "chiprisk.scores").get("cleanup.policy") == "compact"
        # Created with the broker's default replication (one broker: one
        # replica), and the thin source of truth is pointed out.
        assert all(len(p.replicas) == 1 for p in topics["chiprisk.events"].partitions.values())
        assert "event topic chiprisk.events has a partition with 1 replica(s)" in app.log(), app.log()[-3000:]
        produce(bare_broker, scenario())
        wait_for(lambda: accepted(app) == distinct(scenario()), 60, "events scored")
        assert app.scores() == replay_scores(scenario())
    finally:
        app.stop()
    # A second start accepts the topics it made.
    again = Chiprisk(bare_broker, tmp_path, "again")
    try:
        wait_for(again.ready, 60, "ready on the topics it created")
        assert again.scores() == replay_scores(scenario())
    finally:
        again.stop()


def test_missing_topics_at_start_are_waited_for_and_reported(bare_broker, tmp_path):
    app = Chiprisk(bare_broker, tmp_path, create_topics=False)
    try:
        wait_for(lambda: "topic chiprisk.events (kafka.topics) is missing" in app.log(), 30, "a log line naming the missing topic")
        assert app.get("/healthz")[0] == 200
        assert not app.ready(), "not ready without its topics"
        create_topics(f"tcp://{bare_broker}")
        produce(bare_broker, scenario())
        wait_for(lambda: app.ready() and accepted(app) == distinct(scenario()), 90, "recovered by itself")
        assert app.scores() == replay_scores(scenario())
    finally:
        app.stop()


def test_a_broker_that_stops_answering_for_a_while_loses_nothing(tmp_path):
    """The real broker frozen (SIGSTOP) for 10 s mid-stream, then resumed:
    chiprisk stays up and ready meanwhile (its scores are whole, only
    stale), and afterwards every event is scored once. (Tansu's in-memory
    storage does not survive a restart, so freezing is how this broker can
    be "down for a while" and come back.) chiprisk joins no consumer group,
    so Tansu's group coordinator, which never evicts an expired member,
    plays no part."""
    proc, url = start_tansu(tmp_path)
    app = None
    try:
        create_topics(url)
        brokers = url.removeprefix("tcp://")
        events = synthetic(4000, 13)
        produce(brokers, events[:2000])
        app = Chiprisk(brokers, tmp_path)
        wait_for(app.ready, 90, "ready")
        proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(10)
            assert app.get("/healthz")[0] == 200
            assert app.get("/readyz")[0] == 200, "still ready: the scores are whole"
            assert app.proc.poll() is None, "chiprisk is still running"
        finally:
            proc.send_signal(signal.SIGCONT)
        produce(brokers, events[2000:])
        n = distinct(events)
        wait_for(lambda: accepted(app) == n, 180, "every event after the broker came back")
        assert app.scores() == replay_scores(events)
    finally:
        if app is not None:
            app.stop()
        proc.terminate()
        proc.wait(10)
