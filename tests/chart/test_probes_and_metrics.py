"""The probe port and the metrics token (issue 21): the kubelet's probes ask
a listener of their own that no other pod may reach, and /metrics can
require a token that the ServiceMonitor sends from the Secret the pods
mount. The last test runs chiprisk with the rendered environment."""

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import kubernetes_validate
import pytest

from render import CHART, by_kind, render, values_of
from test_chart import BIN, KUBE
from test_network_policy import PROMETHEUS, namespace, reaches
from render import NAMESPACE

MONITORING = values_of(CHART / "ci" / "monitoring-on-values.yaml")
TOKEN = {"metrics": {"tokenSecret": "chiprisk-metrics", "tokenSecretKey": "bearer"}}


def container(values):
    return by_kind(render(values), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]


def env(c):
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def test_every_probe_asks_the_probe_port_that_chiprisk_listens_on():
    c = container({})
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 9464, "probes": 9465}
    assert env(c)["CHIPRISK__HTTP__PROBE_LISTEN"] == "0.0.0.0:9465"
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"]:
        assert c[probe]["httpGet"]["port"] == "probes", probe
    moved = container({"probePort": 8081})
    assert {p["name"]: p["containerPort"] for p in moved["ports"]}["probes"] == 8081
    assert env(moved)["CHIPRISK__HTTP__PROBE_LISTEN"] == "0.0.0.0:8081"


def test_the_probe_port_is_neither_in_the_service_nor_open_to_other_pods():
    service = by_kind(render({}), "Service")[0]
    assert [p["port"] for p in service["spec"]["ports"]] == [9464]
    probes = ("probes", 9465, "TCP")
    assert not reaches({}, namespace(NAMESPACE), {"app": "dashboard"}, port=probes)
    assert not reaches({}, namespace("monitoring"), PROMETHEUS, port=probes)
    assert reaches({}, namespace(NAMESPACE), {"app": "dashboard"}, port=("http", 9464, "TCP"))


def test_the_probe_port_must_differ_from_the_http_port():
    with pytest.raises(Exception, match="probePort must differ from service.port"):
        render({"probePort": 9464})


def test_the_metrics_token_is_mounted_and_sent_by_the_service_monitor():
    docs = render({**MONITORING, **TOKEN})
    endpoint = by_kind(docs, "ServiceMonitor")[0]["spec"]["endpoints"][0]
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": {"name": "chiprisk-metrics", "key": "bearer"}}
    dep = by_kind(docs, "Deployment")[0]
    pod = dep["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "metrics-token")
    assert volume["secret"]["secretName"] == "chiprisk-metrics"
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "metrics-token")
    assert mount["readOnly"] is True
    assert env(pod["containers"][0])["CHIPRISK__HTTP__METRICS_TOKEN_FILE"] == mount["mountPath"] + "/bearer"
    kubernetes_validate.validate(dep, KUBE, strict=True)
    # No Secret, no token anywhere.
    docs = render(MONITORING)
    assert "authorization" not in by_kind(docs, "ServiceMonitor")[0]["spec"]["endpoints"][0]
    c = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert "CHIPRISK__HTTP__METRICS_TOKEN_FILE" not in env(c)
    assert all(m["name"] != "metrics-token" for m in c["volumeMounts"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, token=None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_chiprisk_serves_the_rendered_ports_and_token(tmp_path):
    """chiprisk run with the Deployment's environment (its ports moved to
    free ones, the token file to a temporary one): the probes answer on the
    probe port and /metrics wants the token."""
    http, probes = free_port(), free_port()
    c = container({**TOKEN, "service": {"port": http}, "probePort": probes})
    token = tmp_path / "bearer"
    token.write_text("s3cret\n")
    environment = {**os.environ, **env(c), "CHIPRISK__HTTP__METRICS_TOKEN_FILE": str(token)}
    environment["CHIPRISK__HTTP__LISTEN"] = environment["CHIPRISK__HTTP__LISTEN"].replace("0.0.0.0", "127.0.0.1")
    environment["CHIPRISK__HTTP__PROBE_LISTEN"] = environment["CHIPRISK__HTTP__PROBE_LISTEN"].replace("0.0.0.0", "127.0.0.1")
    process = subprocess.Popen([BIN, "run"], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe = lambda path: f"http://127.0.0.1:{probes}{path}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(probe(c["readinessProbe"]["httpGet"]["path"])) == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert get(probe(c["livenessProbe"]["httpGet"]["path"])) == 200
        assert get(probe("/metrics")) == 404, "the probe port serves the probes only"
        assert get(f"http://127.0.0.1:{http}/metrics") == 401
        assert get(f"http://127.0.0.1:{http}/metrics", "s3cret") == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
