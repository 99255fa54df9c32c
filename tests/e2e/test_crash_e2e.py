"""Crash consistency: a long stream on a real broker (Tansu), chiprisk
killed with SIGKILL at random moments twenty times and restarted each time.
At the end the scores equal a replay of the good events (nothing lost,
nothing counted twice) and every bad event is in the dead-letter topic at
least once."""

import random
import signal
import threading
import time

from e2e_harness import (
    POISON,
    Chiprisk,
    accepted,
    distinct,
    produce,
    read_topic,
    replay_scores,
    synthetic,
    wait_for,
)

KILLS = 20


def test_twenty_kill_9s_lose_nothing_and_count_nothing_twice(broker, tmp_path):
    rng = random.Random(2026)
    good = synthetic(8000, 21)
    stream = list(good)
    for i, bad in enumerate(POISON):
        stream.insert(500 + i * 1000, bad)
    chunks = [stream[i : i + 400] for i in range(0, len(stream), 400)]

    def producer():
        for chunk in chunks:
            produce(broker, chunk)
            time.sleep(2.0)  # the stream lasts about as long as the kills

    feeding = threading.Thread(target=producer)
    feeding.start()
    kills = 0
    while kills < KILLS:
        app = Chiprisk(broker, tmp_path, name=f"run{kills}")
        # Kill at a random moment: sometimes before it is ready, sometimes mid-stream.
        time.sleep(rng.uniform(0.5, 4.0))
        app.stop(signal.SIGKILL)
        kills += 1
    feeding.join()

    final = Chiprisk(broker, tmp_path, name="final")
    try:
        # The stream was fully produced before this start: ready means all of it is in.
        wait_for(final.ready, 180, f"ready after {KILLS} kills")
        assert accepted(final) == distinct(good)
        assert final.scores() == replay_scores(good)
        dead = [value for value, _ in read_topic(broker, "chiprisk.dead-letter")]
        for bad in POISON:
            assert dead.count(bad) >= 1, f"never dead-lettered: {bad[:40]!r}"
    finally:
        final.stop()
