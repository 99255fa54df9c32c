"""`chiprisk publish` against a real broker (Tansu), read back by an
independent client (confluent-kafka) and by a running chiprisk."""

import json
import os
import subprocess
import time

from e2e_harness import BIN, Chiprisk, bad_events, free_port, read_records, scenario, wait_for


def publish(brokers, path, *args):
    env = dict(os.environ, CHIPRISK__KAFKA__BROKERS=brokers)
    return subprocess.run([BIN, "publish", str(path), *args], env=env, capture_output=True, text=True, timeout=120)


def read_keyed(brokers, topic, idle=2.0):
    """Every record of the topic: (key, value)."""
    return [(key, value) for key, value, _ in read_records(brokers, topic, idle)]


def lines_with_bad_ones(tmp_path):
    good = scenario()
    bad = [case[3] for case in bad_events() if b"\n" not in case[3] and len(case[3]) < 1000][:5]
    mixed = good[:10] + bad + good[10:]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(mixed) + b"\n")
    return path, good, bad, mixed


def test_publish_sends_exactly_the_accepted_events_keyed_by_id_and_reports_the_rejected(broker, tmp_path):
    path, good, bad, mixed = lines_with_bad_ones(tmp_path)
    out = publish(broker, path)
    assert out.returncode == 0, out.stderr
    rejected_lines = [l for l in out.stderr.splitlines() if l.startswith(f"{path}:")]
    assert [int(l.split(":")[1]) for l in rejected_lines] == [11, 12, 13, 14, 15], out.stderr
    assert f"sent {len(good)} to chiprisk.events" in out.stderr and f"rejected {len(bad)}" in out.stderr, out.stderr
    records = read_keyed(broker, "chiprisk.events")
    assert sorted(records) == sorted((json.loads(g)["id"].encode(), g) for g in good)


def test_publishing_twice_changes_no_score(broker, tmp_path):
    path, good, _, _ = lines_with_bad_ones(tmp_path)
    app = Chiprisk(broker, tmp_path)
    try:
        distinct = len({json.loads(g)["id"] for g in good})
        assert publish(broker, path).returncode == 0
        wait_for(lambda: app.ready() and app.report()["summary"]["accepted"] == distinct, 60, "the first publish scored")
        first = app.scores()
        assert publish(broker, path).returncode == 0
        duplicates = lambda: app.report()["summary"]["duplicates"]  # noqa: E731
        wait_for(lambda: duplicates() == 2 * len(good) - distinct, 60, "the second publish read")
        assert app.scores() == first
        assert app.report()["summary"]["accepted"] == distinct
    finally:
        app.stop()


def test_strict_sends_nothing_if_a_line_is_rejected_and_dry_run_needs_no_broker(broker, tmp_path):
    path, _, bad, _ = lines_with_bad_ones(tmp_path)
    out = publish(broker, path, "--strict")
    assert out.returncode == 1 and "--strict: nothing sent" in out.stderr, out.stderr
    assert read_keyed(broker, "chiprisk.events", idle=1.0) == []
    dry = subprocess.run([BIN, "publish", str(path), "--dry-run"], capture_output=True, text=True, timeout=60)
    assert dry.returncode == 1 and f"{len(bad)} rejected (dry run, nothing sent)" in dry.stderr, dry.stderr


def test_a_broker_that_is_down_is_a_clear_error_and_nothing_is_reported_sent(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(scenario()) + b"\n")
    started = time.time()
    out = publish(f"127.0.0.1:{free_port()}", path)
    assert out.returncode == 69, (out.returncode, out.stderr)
    assert "nothing sent: cannot reach the Kafka brokers" in out.stderr, out.stderr
    assert "sent " not in out.stderr.replace("nothing sent", "")
    assert time.time() - started < 60
