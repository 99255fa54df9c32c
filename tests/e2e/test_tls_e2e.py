"""Kafka over TLS, end to end: a real TLS endpoint (stunnel) in front of the
real broker (Tansu), with a CA, a server and a client certificate made by
`openssl` for each test. Managed clusters (MSK, Confluent Cloud, Aiven,
Strimzi) demand TLS, often with client certificates; chiprisk must publish,
rebuild and follow over it, and say clearly why when it cannot.

Tansu listens in plain text on a port only stunnel talks to and advertises
stunnel's TLS port, so every client connection after bootstrap goes
through TLS too.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from e2e_harness import (
    AT,
    BIN,
    KEEP_EVERYTHING,
    ROOT,
    TOPICS,
    Chiprisk,
    distinct,
    free_port,
    replay_scores,
    scenario,
    synthetic,
    wait_for,
)

STUNNEL = os.environ.get("STUNNEL_BIN", "stunnel4")
TANSU = os.environ.get("TANSU_BIN", "tansu")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)


def make_cert(d, name, ca, cn, ext):
    (d / f"{name}.ext").write_text(ext)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)


@pytest.fixture
def pki(tmp_path):
    """A CA, a broker certificate for 127.0.0.1 and a client certificate
    signed by it, and a second CA that signed nothing of the broker's."""
    d = tmp_path / "pki"
    d.mkdir()
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_cert(d, "server", "ca", "localhost",
              "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    make_cert(d, "client", "ca", "chiprisk", "extendedKeyUsage=clientAuth\n")
    return d


def tls_properties(pki, client_cert=True, ca="ca"):
    props = {"security.protocol": "SSL", "ssl.ca.location": str(pki / f"{ca}.pem")}
    if client_cert:
        props |= {"ssl.certificate.location": str(pki / "client.pem"), "ssl.key.location": str(pki / "client.key")}
    return props


def as_env(props):
    """kafka.properties as CHIPRISK__ variables (`_` stands for `.`)."""
    return {f"CHIPRISK__KAFKA__PROPERTIES__{k.replace('.', '_').upper()}": v for k, v in props.items()}


@pytest.fixture
def tls_broker(tmp_path, pki):
    """Tansu behind stunnel, which demands a client certificate signed by
    the test CA (mutual TLS). Yields the TLS bootstrap address."""
    plain, tls = free_port(), free_port()
    log = open(tmp_path / "tansu.log", "w")
    tansu = subprocess.Popen(
        [TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{plain}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{tls}", "--storage-engine", "memory://tansu/"],
        stdout=log, stderr=subprocess.STDOUT)
    conf = tmp_path / "stunnel.conf"
    conf.write_text(
        "foreground = yes\npid =\ndebug = notice\n"
        f"[kafka]\naccept = 127.0.0.1:{tls}\nconnect = 127.0.0.1:{plain}\n"
        f"cert = {pki / 'server.pem'}\nkey = {pki / 'server.key'}\nCAfile = {pki / 'ca.pem'}\n"
        "requireCert = yes\nverifyChain = yes\n"
    )
    stunnel = subprocess.Popen([STUNNEL, str(conf)], stdout=open(tmp_path / "stunnel.log", "w"),
                               stderr=subprocess.STDOUT)
    try:
        for port in (plain, tls):
            wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, 20,
                     f"port {port} to listen")
        brokers = f"127.0.0.1:{tls}"
        admin = AdminClient({"bootstrap.servers": brokers, **tls_properties(pki)})
        new = [NewTopic(t, n, 1, config=KEEP_EVERYTHING if t == "chiprisk.events" else {}) for t, n in TOPICS.items()]
        for future in admin.create_topics(new, operation_timeout=10).values():
            future.result()
        yield brokers
    finally:
        for proc in (stunnel, tansu):
            proc.terminate()
            proc.wait(10)


def publish(brokers, path, props, *args):
    env = dict(os.environ, CHIPRISK__KAFKA__BROKERS=brokers, **as_env(props))
    return subprocess.run([BIN, "publish", str(path), *args], env=env, capture_output=True, text=True, timeout=120)


def test_publish_and_run_over_mutual_tls_with_zstd_score_exactly_like_a_replay(tls_broker, pki, tmp_path):
    events = scenario() + synthetic(500, 3)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(events) + b"\n")
    # The producer compresses with zstd: the build has it, and the broker
    # stores what chiprisk's consumer then decompresses.
    out = publish(tls_broker, path, tls_properties(pki) | {"compression.type": "zstd"})
    assert out.returncode == 0, out.stderr
    assert f"sent {len(events)} to chiprisk.events" in out.stderr, out.stderr
    app = Chiprisk(tls_broker, tmp_path, env=as_env(tls_properties(pki)))
    try:
        wait_for(app.ready, 90, "ready over TLS")
        assert app.report()["summary"]["accepted"] == distinct(events)
        assert app.scores() == replay_scores(events)
        assert 'chiprisk_kafka_errors_total{kind="auth"} 0' in app.metrics()
    finally:
        app.stop()
    assert app.proc.returncode == 0, app.log()[-3000:]


def stays_up_not_ready_and_says_why(app, cause, seconds=8):
    """The replica keeps running and answering its probes, never ready,
    while its log names the cause; returns the log."""
    log = wait_for(lambda: cause in app.log() and app.log(), 60, f"the log to name the cause ({cause})")
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert app.proc.poll() is None, f"exited {app.proc.returncode}: {app.log()[-3000:]}"
        assert app.answer("/healthz")[0] == 200
        assert app.answer("/readyz")[0] == 503
        time.sleep(0.5)
    return log


def auth_errors(app):
    line = next(l for l in app.metrics().splitlines() if l.startswith('chiprisk_kafka_errors_total{kind="auth"}'))
    return float(line.split()[-1])


def test_an_untrusted_broker_certificate_is_a_clear_error_and_the_replica_stays_up_not_ready(tls_broker, pki, tmp_path):
    app = Chiprisk(tls_broker, tmp_path, env=as_env(tls_properties(pki, ca="other-ca")))
    try:
        log = stays_up_not_ready_and_says_why(app, "certificate verify failed")
        assert "ssl.ca.location" in log, log[-3000:]  # librdkafka's hint names the setting to fix
        assert auth_errors(app) > 0
    finally:
        app.stop()


def test_a_missing_client_certificate_is_a_clear_error_and_the_replica_stays_up_not_ready(tls_broker, pki, tmp_path):
    app = Chiprisk(tls_broker, tmp_path, env=as_env(tls_properties(pki, client_cert=False)))
    try:
        stays_up_not_ready_and_says_why(app, "certificate required")
        assert auth_errors(app) > 0
    finally:
        app.stop()


def test_sasl_scram_over_tls_with_zstd_is_accepted_and_a_refused_handshake_is_named(tls_broker, pki, tmp_path):
    # What the chart's ci/kafka-with-sasl-values.yaml configures, against a
    # broker that speaks TLS but not SASL (no SASL broker runs here): the
    # build accepts every property, the TLS handshake completes, and the
    # refused SASL handshake is logged as such while the replica stays up.
    props = tls_properties(pki) | {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "chiprisk",
        "sasl.password": "not-a-real-password",
        "compression.type": "zstd",
    }
    app = Chiprisk(tls_broker, tmp_path, env=as_env(props))
    try:
        log = stays_up_not_ready_and_says_why(app, "SASL")
        assert "not available at build time" not in log and "Current build options" not in log, log[-3000:]
        assert "certificate verify failed" not in log, log[-3000:]
        assert "not-a-real-password" not in log
    finally:
        app.stop()


# --- The user's path: the image, configured by the chart -------------------

sys.path.insert(0, str(ROOT / "tests" / "image"))
sys.path.insert(0, str(ROOT / "tests" / "chart"))
from harness import build_rootfs, in_image, need_root  # noqa: E402
from render import rendered_config  # noqa: E402

MTLS_VALUES = ROOT / "helm" / "chiprisk" / "ci" / "kafka-with-mtls-values.yaml"


def install_chart_files(rootfs, pki, config):
    """What Kubernetes would mount for the chart's mTLS values: the
    configuration (the rendered ConfigMap) and the CA, certificate and key
    (the ConfigMap and Secret the values name), at the paths the pod sees."""
    config_dir = rootfs / "etc" / "chiprisk"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "chiprisk.yaml").write_text(yaml.safe_dump(config))
    _, mounts = rendered_config(MTLS_VALUES)
    sources = {"configMap": {"kafka-ca-bundle": {"trust-bundle.pem": pki / "ca.pem"}},
               "secret": {"chiprisk-kafka-client": {"tls.crt": pki / "client.pem", "tls.key": pki / "client.key"}}}
    for path, (kind, name, key) in mounts.items():
        if path == "/etc/chiprisk/chiprisk.yaml":
            continue  # the configuration, written above
        target = rootfs / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sources[kind][name][key], target)
        target.chmod(0o644)  # a Secret volume's default mode
    return mounts


def run_image(rootfs, tmp_path, brokers, name, *args, env=None):
    """chiprisk run in the image against `brokers`; (process, port, log)."""
    port = free_port()
    env = {"CHIPRISK__HTTP__LISTEN": f"127.0.0.1:{port}", "CHIPRISK__KAFKA__BROKERS": brokers,
           "CHIPRISK__KAFKA__CREATE_TOPICS": "false", **(env or {})}
    log = tmp_path / f"image-{name}.log"
    proc = in_image(rootfs, "/usr/local/bin/chiprisk", *args, "run", env=env, background=True, log=log)
    return proc, port, log


def published_scenario(brokers, pki, tmp_path):
    """The demo scenario, published over mTLS; its events."""
    events = scenario()
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(events) + b"\n")
    assert publish(brokers, path, tls_properties(pki)).returncode == 0
    return events


def image_ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


def image_scores(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/scores?at={AT}", timeout=5) as r:
        return {v["vendor"]: v["score"] for v in json.loads(r.read())["vendors"]}


def stop_image(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode


def test_the_image_with_the_charts_mtls_values_rebuilds_over_tls_like_a_replay(tls_broker, pki, tmp_path):
    need_root()
    events = published_scenario(tls_broker, pki, tmp_path)
    config, mounts = rendered_config(MTLS_VALUES)
    props = config["kafka"]["properties"]
    assert props["security.protocol"] == "SSL"
    assert {props["ssl.ca.location"], props["ssl.certificate.location"], props["ssl.key.location"]} <= set(mounts)
    rootfs = build_rootfs(tmp_path / "rootfs")
    install_chart_files(rootfs, pki, config)
    # The chart's container arguments (deployment.yaml), brokers from the
    # environment (the test's address instead of the in-cluster one).
    proc, port, log = run_image(rootfs, tmp_path, tls_broker, "chart", "--config", "/etc/chiprisk/chiprisk.yaml",
                                "--log-format", "json")
    try:
        wait_for(lambda: image_ready(port), 90, f"the image ready over mTLS ({log})")
        assert image_scores(port) == replay_scores(events)
    finally:
        code = stop_image(proc)
    assert code == 0, log.read_text()[-3000:]


def test_the_image_trusts_a_ca_in_its_system_bundle_with_no_ca_setting(tls_broker, pki, tmp_path):
    # Brokers with certificates from a public CA (Confluent Cloud, MSK):
    # nothing to configure, the image's CA bundle is found. Here the test
    # CA stands in for a public one, appended to the image's bundle.
    need_root()
    events = published_scenario(tls_broker, pki, tmp_path)
    rootfs = build_rootfs(tmp_path / "rootfs", extra_ca=pki / "ca.pem")
    tls_dir = rootfs / "etc" / "kafka-client"
    tls_dir.mkdir(parents=True)
    for name in ("client.pem", "client.key"):
        shutil.copy(pki / name, tls_dir / name)
        (tls_dir / name).chmod(0o644)
    props = {"security.protocol": "SSL", "ssl.certificate.location": "/etc/kafka-client/client.pem",
             "ssl.key.location": "/etc/kafka-client/client.key"}
    proc, port, log = run_image(rootfs, tmp_path, tls_broker, "system-ca", env=as_env(props))
    try:
        wait_for(lambda: image_ready(port), 90, f"the image ready, trusting its system CA bundle ({log})")
        assert image_scores(port) == replay_scores(events)
    finally:
        code = stop_image(proc)
    assert code == 0, log.read_text()[-3000:]
