"""`chiprisk publish` against a plain rdkafka producer, side by side, on a
real broker (Tansu, in memory).

    target/test-venv/bin/python benches/kafka/publish.py [N]

Generates N synthetic events (default 200,000; examples/generate, seed 77),
then, each into its own fresh topic of 4 partitions on the same broker, in
alternation, three times each:
  - plain: examples/produce_plain.rs sends the lines as they are, unkeyed,
    unvalidated (idempotent, acks=all, linger.ms=5), and waits for every
    acknowledgement;
  - publish: `chiprisk publish FILE --topic T` (release build): the same
    producer settings, plus decoding and validating each line with the
    service's decoder and keying it by event id.
Each time is wall-clock for the whole process (reading the file included).
Prints one JSON object: the median rates and their ratio.
Numbers go to BENCHMARKS.md by hand, with the method.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT, build, start_broker
from confluent_kafka.admin import AdminClient, NewTopic

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000


def topic(brokers, name):
    admin = AdminClient({"bootstrap.servers": brokers})
    for f in admin.create_topics([NewTopic(name, 4, 1, config={"retention.ms": "-1"})], operation_timeout=10).values():
        f.result()


def timed(cmd):
    started = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - started


def main():
    bin_dir = build()
    broker, brokers = start_broker()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            events = Path(tmp) / "events.jsonl"
            events.write_bytes(subprocess.run([str(bin_dir / "examples" / "generate"), str(N), "77"], check=True, capture_output=True).stdout)
            plain, publish = [], []
            for i in range(3):
                topic(brokers, f"plain-{i}")
                plain.append(N / timed([str(bin_dir / "examples" / "produce_plain"), brokers, f"plain-{i}", str(events)]))
                topic(brokers, f"publish-{i}")
                env_cmd = ["env", f"CHIPRISK__KAFKA__BROKERS={brokers}", str(bin_dir / "chiprisk"), "publish", str(events), "--topic", f"publish-{i}"]
                publish.append(N / timed(env_cmd))
        p, q = statistics.median(plain), statistics.median(publish)
        print(json.dumps({"events": N, "plain_per_second": [round(x) for x in plain], "publish_per_second": [round(x) for x in publish],
                          "plain_median": round(p), "publish_median": round(q), "ratio": round(q / p, 3)}, indent=2))
    finally:
        broker.terminate()


if __name__ == "__main__":
    main()
