"""The end-to-end tests' shared parts: the real broker (Tansu), chiprisk as
its own process, confluent-kafka to produce and read, `chiprisk replay` as
the reference. The fixtures (`broker`, `bare_broker`) are in conftest.py."""


import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CHIPRISK_BIN", str(ROOT / "target" / "debug" / "chiprisk"))
TANSU = os.environ.get("TANSU_BIN", "tansu")
AT = "2026-06-01T00:00:00Z"
TOPICS = {"chiprisk.events": 4, "chiprisk.scores": 1, "chiprisk.dead-letter": 1}
# The events topic is the log chiprisk rebuilds from: it keeps everything.
KEEP_EVERYTHING = {"retention.ms": "-1", "retention.bytes": "-1"}


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



def create_topics(url, events_config=KEEP_EVERYTHING):
    """chiprisk's topics, created with confluent-kafka's Admin API."""
    admin = AdminClient({"bootstrap.servers": url.removeprefix("tcp://")})
    new = [
        NewTopic(topic, partitions, 1, config=events_config if topic == "chiprisk.events" else {})
        for topic, partitions in TOPICS.items()
    ]
    for future in admin.create_topics(new, operation_timeout=10).values():
        future.result()


def topic_config(brokers, topic):
    """A topic's configuration as the broker describes it: {name: value}."""
    admin = AdminClient({"bootstrap.servers": brokers})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=10)
    return {name: e.value for name, e in entries.items()}



class Chiprisk:
    """One chiprisk process consuming from the broker."""

    def __init__(self, brokers, tmp_path, name="a", group="chiprisk", create_topics=False, bin=BIN, env=None):
        self.port = free_port()
        environment = dict(os.environ)
        environment.update(
            {
                "CHIPRISK__KAFKA__BROKERS": brokers,
                "CHIPRISK__KAFKA__GROUP_ID": group,
                "CHIPRISK__KAFKA__CREATE_TOPICS": "true" if create_topics else "false",
                "CHIPRISK__KAFKA__DRAIN_TIMEOUT_MS": "2000",
                "CHIPRISK__HTTP__LISTEN": f"127.0.0.1:{self.port}",
                "CHIPRISK_LOG": os.environ.get("CHIPRISK_E2E_LOG", "info"),
            }
        )
        environment.update(env or {})
        self.log_path = tmp_path / f"chiprisk-{name}-{self.port}.log"
        self.proc = subprocess.Popen([bin, "run"], env=environment, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"))

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            return r.status, r.read().decode()

    def answer(self, path):
        """(status, body) of any answer, 503 included; (None, error) if none came."""
        try:
            return self.get(path)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except Exception as e:
            return None, repr(e)

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
    """Every record of a topic now: (value, headers dict)."""
    return [(value, headers) for _, value, headers in read_records(brokers, topic, idle)]


def read_records(brokers, topic, idle=2.0):
    """Every record of a topic now: (key, value, headers dict). Reads every
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
            out.append((m.key(), m.value(), {k: (v or b"").decode() for k, v in (m.headers() or [])}))
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
    return [line for line in (ROOT / "data" / "demo-scenario.jsonl").read_bytes().splitlines() if line.strip()]


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


CATALOG = ["nvidia", "amd", "intel", "huawei", "cambricon", "alibaba-thead", "baidu-kunlunxin", "hygon", "moore-threads", "biren", "metax"]


def vendor_series(metrics_text, name="chiprisk_vendor_risk_score"):
    """The vendors of a per-vendor series in a metrics text."""
    return set(re.findall(name + r'\{vendor="([^"]+)"\}', metrics_text))

def bad_events():
    """The bad-input matrix (tests/data/bad-events.json), expanded: the same
    cases tests/cli.rs feeds to `chiprisk replay`."""
    doc = json.loads((ROOT / "tests" / "data" / "bad-events.json").read_text())
    expand = lambda t: re.sub(r"<<(\d+)\*(.*?)>>", lambda m: m.group(2) * int(m.group(1)), t)
    return [
        (c["name"], c["reason"], c["message_contains"], bytes.fromhex(c["hex"]) if "hex" in c else expand(c["json"]).encode())
        for c in doc["cases"]
    ]
