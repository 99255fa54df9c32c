"""The Helm chart, checked with Helm's own Go SDK (helm-python-sdk), the
Kubernetes schemas (kubernetes-validate, strict), promtool and chiprisk
itself. Run by scripts/test:  target/test-venv/bin/python -m pytest tests/chart
"""

import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from render import CHART, ROOT, by_kind, config_map, render, render_sources, values_of

BIN = os.environ.get("CHIPRISK_BIN", str(ROOT / "target" / "debug" / "chiprisk"))
CASES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBE = "1.32.0"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion, >=X.Y.Z-0)
# and the newest kubernetes-validate knows: every manifest is checked against both.
KUBE_MIN = re.match(r">=(\d+\.\d+\.\d+)", yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]).group(1)
KUBE_VERSIONS = [KUBE_MIN, KUBE, kubernetes_validate.latest_version()]
DASHBOARD = CHART / "files" / "chiprisk-dashboard.json"


def test_the_chart_lints_without_warnings():
    for case in [None, *CASES]:
        for kube in [KUBE_MIN, KUBE]:
            report = helm.lint(str(CHART), values_of(case), strict=True, kube_version=f"v{kube}")
            assert report["errors"] == [], report
            assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_every_values_case_renders_valid_kubernetes_manifests(case):
    sources = render_sources(case)
    docs = [d for _, d in sources]
    assert by_kind(docs, "Deployment") and by_kind(docs, "Service") and by_kind(docs, "ConfigMap")
    for source, d in sources:
        if d["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # CRDs: checked below with promtool and by shape
        for kube in KUBE_VERSIONS:
            kubernetes_validate.validate(d, kube, strict=True)
        if source.endswith("extra-objects.yaml"):
            continue  # the user's own objects, as given
        labels = d["metadata"]["labels"]
        for key in ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "helm.sh/chart"]:
            assert key in labels, (d["kind"], key)


def test_the_pod_runs_restricted():
    for case in [None, *CASES]:
        dep = by_kind(render(values_of(case) if case else {}), "Deployment")[0]
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        c = pod["containers"][0]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert "limits" in c["resources"] and "requests" in c["resources"]
        # Longer than chiprisk's default drain timeout (5 s).
        assert pod["terminationGracePeriodSeconds"] > 5


def test_by_default_two_replicas_roll_one_at_a_time_and_a_budget_keeps_one_serving():
    docs = render({})
    dep = by_kind(docs, "Deployment")[0]
    assert dep["spec"]["replicas"] == 2
    # A new pod is ready only once it has rebuilt; an old one goes only then.
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    pdbs = by_kind(docs, "PodDisruptionBudget")
    assert len(pdbs) == 1
    pdb = pdbs[0]["spec"]
    assert pdb["maxUnavailable"] == 1 and "minAvailable" not in pdb
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    # The two replicas prefer different nodes, without ever blocking scheduling.
    [spread] = dep["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()


def test_the_replicas_strategy_budget_and_spread_follow_the_values():
    docs = render({"replicaCount": 3, "strategy": {"type": "Recreate"}, "podDisruptionBudget": {"enabled": False},
                   "spreadAcrossNodes": False})
    dep = by_kind(docs, "Deployment")[0]
    kubernetes_validate.validate(dep, KUBE, strict=True)
    assert dep["spec"]["replicas"] == 3
    # Kubernetes refuses rollingUpdate with Recreate.
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert not by_kind(docs, "PodDisruptionBudget")
    assert "topologySpreadConstraints" not in dep["spec"]["template"]["spec"]
    surge = render({"strategy": {"rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 1}}})
    assert by_kind(surge, "Deployment")[0]["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "50%", "maxUnavailable": 1}


def test_only_readiness_waits_for_the_rebuild():
    """/healthz answers 200 while a pod rebuilds and /readyz 503: the probes
    that restart a pod must ask /healthz, and readiness must notice the end
    of a rebuild of a million events (about 2 s) within a few seconds."""
    c = by_kind(render({}), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["readinessProbe"]["periodSeconds"] <= 5
    # A pod busy rebuilding may answer slowly: a restart needs 30 s of failures.
    live = c["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 30
    assert live["timeoutSeconds"] >= 2


def test_pods_roll_when_the_configuration_changes():
    checksum = lambda v: by_kind(render(v), "Deployment")[0]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"config": {"explain": {"max_contributions": 10}}})


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_the_rendered_configuration_is_accepted_by_chiprisk(case, tmp_path):
    cm = config_map(render(case))
    path = tmp_path / "chiprisk.yaml"
    path.write_text(cm["data"]["chiprisk.yaml"])
    # properties_from_files point into the pod; make them exist here.
    config = yaml.safe_load(cm["data"]["chiprisk.yaml"]) or {}
    files = (config.get("kafka") or {}).get("properties_from_files") or {}
    env = dict(os.environ)
    out = subprocess.run([BIN, "--config", str(path), "config"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    if files:
        assert "/var/run/secrets/kafka/password" in out.stdout
        assert "sasl.password" in out.stdout
    properties = (config.get("kafka") or {}).get("properties") or {}
    for location in ["ssl.ca.location", "ssl.certificate.location", "ssl.key.location"]:
        if location in properties:
            assert properties[location] in out.stdout, location


def test_the_kafka_secret_is_mounted_as_files_and_never_inlined():
    docs = render(values_of(CHART / "ci" / "kafka-with-sasl-values.yaml"))
    pod = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    assert {"name": "kafka-secret", "secret": {"secretName": "chiprisk-kafka"}} in pod["volumes"]
    assert "password" not in json.dumps(yaml.safe_load(config_map(docs)["data"]["chiprisk.yaml"])["kafka"]["properties"])


def test_the_api_token_is_mounted_as_a_file_and_named_in_the_configuration(tmp_path):
    docs = render(values_of(CHART / "ci" / "kafka-with-sasl-values.yaml"))
    pod = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    assert {"name": "api-token", "secret": {"secretName": "chiprisk-api"}} in pod["volumes"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "api-token", "mountPath": "/var/run/secrets/chiprisk-api", "readOnly": True} in mounts
    config = yaml.safe_load(config_map(docs)["data"]["chiprisk.yaml"])
    assert config["http"]["api_token_file"] == "/var/run/secrets/chiprisk-api/token"
    # Without the value, no token and no mount.
    minimal = render({})
    pod = by_kind(minimal, "Deployment")[0]["spec"]["template"]["spec"]
    assert not any(v["name"] == "api-token" for v in pod.get("volumes", []))


def test_the_network_policy_allows_only_the_http_port_in_and_dns_and_kafka_out():
    docs = render(values_of(CHART / "ci" / "kafka-with-sasl-values.yaml"))
    np = by_kind(docs, "NetworkPolicy")[0]["spec"]
    assert np["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for r in np["ingress"] for p in r["ports"]] == ["http"]
    assert sorted(p["port"] for r in np["egress"] for p in r["ports"]) == [53, 53, 9093]
    assert by_kind(render({}), "NetworkPolicy"), "on by default"
    assert not by_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def test_monitoring_resources_need_the_crds_and_carry_the_rules_and_labels():
    assert not by_kind(render({}), "ServiceMonitor"), "no monitoring.coreos.com/v1 offline"
    docs = render(values_of(CHART / "ci" / "monitoring-on-values.yaml"))
    sm = by_kind(docs, "ServiceMonitor")[0]
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"][0]["port"] == "http"
    rule = by_kind(docs, "PrometheusRule")[0]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert [g["name"] for g in rule["spec"]["groups"]] == ["chiprisk-policy", "chiprisk-health", "chiprisk-producers"]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": rule["spec"]["groups"]}, f)
    out = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    os.unlink(f.name)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_dashboard_configmap_is_labelled_for_the_grafana_sidecar():
    docs = render(values_of(CHART / "ci" / "monitoring-on-values.yaml"))
    cm = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard"))
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"]["grafana_folder"] == "chiprisk"
    dashboard = json.loads(cm["data"]["chiprisk-dashboard.json"])
    assert dashboard == json.loads(DASHBOARD.read_text())
    assert all(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))


# One history of every metric the dashboard reads, as one replica exports it.
DASHBOARD_HISTORY = {
    'chiprisk_vendor_risk_score{vendor="nvidia"}': "85x20",
    'chiprisk_vendor_risk_score{vendor="huawei"}': "40+1x20",
    'chiprisk_vendor_risk_component_pressure{vendor="nvidia",component="export_ban"}': "1.5x20",
    'chiprisk_vendor_risk_component_pressure{vendor="huawei",component="market_signal"}': "0.25x20",
    'chiprisk_vendor_ban_info{vendor="nvidia",kind="export",product="H20",event_id="h20",title="H20 ban"}': "_x10 1744675200x10",
    'chiprisk_vendor_last_lift_info{vendor="nvidia",kind="export",product="H20",event_id="lift",title="H20 lift"}': "_x12 1752537600x8",
    'chiprisk_events_total{type="export_ban",outcome="accepted"}': "0+2x20",
    'chiprisk_events_total{type="market_signal",outcome="accepted"}': "0+5x20",
    'chiprisk_events_total{type="market_signal",outcome="duplicate"}': "0+1x20",
    'chiprisk_events_rejected_total{reason="malformed_json"}': "0+3x20",
    'chiprisk_kafka_dead_lettered_total{reason="malformed_json"}': "0+3x20",
    'chiprisk_kafka_consumer_lag{topic="chiprisk.events",partition="0"}': "10x20",
    'chiprisk_kafka_consumer_lag{topic="chiprisk.events",partition="1"}': "30x20",
    'chiprisk_event_processing_duration_seconds_bucket{le="0.0001"}': "0+5x20",
    'chiprisk_event_processing_duration_seconds_bucket{le="0.002"}': "0+9x20",
    'chiprisk_event_processing_duration_seconds_bucket{le="+Inf"}': "0+10x20",
    'chiprisk_event_latency_seconds_bucket{le="0.01"}': "0+5x20",
    'chiprisk_event_latency_seconds_bucket{le="0.1"}': "0+9x20",
    'chiprisk_event_latency_seconds_bucket{le="+Inf"}': "0+10x20",
    'chiprisk_ready': "1x20",
    'chiprisk_vendor_last_event_info{vendor="nvidia",type="export_ban",event_id="h20",title="H20 ban"}': "1744675200x20",
    'chiprisk_vendor_last_event_timestamp_seconds{vendor="nvidia"}': "1744675200x20",
    'chiprisk_scores_as_of_timestamp_seconds': "0+60x20",
    'chiprisk_policy_change_timestamp_seconds{vendor="nvidia",kind="export",change="imposed",product="H20",event_id="h20",title="H20 ban",source_url="https://example.com"}': "600x20",
    'chiprisk_policy_change_timestamp_seconds{vendor="nvidia",kind="export",change="lifted",product="H20",event_id="lift",title="H20 lift",source_url="https://example.com"}': "_x5 700x15",
    'chiprisk_rebuild_remaining_messages': "0x20",
    'chiprisk_engine_events': "1000x20",
    'chiprisk_kafka_last_fetch_timestamp_seconds': "0+60x20",
    'chiprisk_kafka_caught_up_timestamp_seconds': "0+60x10 600x10",
}


def test_every_dashboard_query_gives_the_same_answer_with_one_replica_or_three(tmp_path):
    """Every replica exports every series, differing only in pod and
    instance. The same history exported by one replica (job="one") and by
    three (job="three"): every query of the dashboard, but the replica
    counts, must give the same series with the same values (promtool)."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])] + [a["expr"] for a in dashboard["annotations"]["list"]]
    assert all('job="$job", namespace=~"$namespace"' in e for e in exprs), "every query selects the job and namespace"
    counts = [e for e in exprs if "chiprisk_ready" in e]
    assert sorted(counts) == ['count(chiprisk_ready{job="$job", namespace=~"$namespace"})', 'sum(chiprisk_ready{job="$job", namespace=~"$namespace"})'], "only these count replicas"
    exprs = [e.replace("$vendor", ".*").replace("$namespace", ".*").replace("$__rate_interval", "2m") for e in exprs if e not in counts]
    used = set(re.findall(r"chiprisk_[a-z_]+", " ".join(exprs)))
    given = {re.match(r"chiprisk_[a-z_]+", s).group(0) for s in DASHBOARD_HISTORY}
    assert used <= given, f"no history for {used - given}"

    def scoped(expr, job):
        return expr.replace("$job", job)

    def series(job, pod):
        out = []
        for selector, values in DASHBOARD_HISTORY.items():
            name, _, labels = selector.rstrip("}").partition("{")
            extra = f'job="{job}",pod="chiprisk-{pod}",instance="10.0.0.{pod}:9464"'
            out.append({"series": f"{name}{{{extra}{',' + labels if labels else ''}}}", "values": values})
        return out

    rules = [{"record": f"dash:{job}:{i}", "expr": scoped(e, job)} for i, e in enumerate(exprs) for job in ["one", "three"]]
    (tmp_path / "dashboard-rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checks = []
    for i, e in enumerate(exprs):
        one, three = f"dash:one:{i}", f"dash:three:{i}"
        checks += [
            {"expr": f"absent({one})", "eval_time": "14m", "exp_samples": []},
            {"expr": f"({one} unless ignoring(job) {three}) or ({three} unless ignoring(job) {one})", "eval_time": "14m", "exp_samples": []},
            {"expr": f"{one} != ignoring(job) {three}", "eval_time": "14m", "exp_samples": []},
        ]
    test = {
        "rule_files": ["dashboard-rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series("one", 1) + series("three", 1) + series("three", 2) + series("three", 3),
                   "promql_expr_test": checks}],
    }
    (tmp_path / "dashboard-test.yml").write_text(yaml.safe_dump(test))
    out = subprocess.run(["promtool", "test", "rules", "dashboard-test.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, "\n".join(exprs) + "\n" + out.stdout + out.stderr


def test_values_outside_the_schema_are_refused():
    with pytest.raises(helm.HelmError):
        render({"replicaCount": "three"})
    with pytest.raises(helm.HelmError):
        render({"servce": {"port": 1}})
    with pytest.raises(helm.HelmError):
        render({"strategy": {"type": "BlueGreen"}})
    with pytest.raises(helm.HelmError):
        render({"strategy": {"rollingUpdate": {"maxUnavailable": "one"}}})
    with pytest.raises(helm.HelmError):
        render({"podDisruptionBudget": {"maxUnavailable": -1}})


def test_every_value_is_documented():
    """A key with a `# --` comment right above it documents its whole
    subtree; otherwise it is a section, and each of its children must be
    documented (scripts/chart-readme's reading, which the README shows)."""
    rows, missing = chart_readme().documented_values((CHART / "values.yaml").read_text())
    assert missing == []
    assert all(description for _, _, _, description in rows)
    # The reading itself: a plain comment documents nothing, a `# --` one its key and subtree.
    rows, missing = chart_readme().documented_values("# plain\na: 1\nb:\n  # -- documented\n  c: {d: 1}\n  e: 2\n")
    assert [r[0] for r in rows] == ["b.c"] and missing == ["a", "b.e"]


def test_the_compose_stack_mounts_files_that_exist():
    compose_dir = ROOT / "deploy" / "compose"
    stack = yaml.safe_load((compose_dir / "docker-compose.yml").read_text())
    assert {"kafka", "chiprisk", "prometheus", "alertmanager", "grafana"} <= set(stack["services"])
    for service in stack["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (compose_dir / source).resolve().exists(), source
    assert (ROOT / stack["services"]["chiprisk"]["build"]["dockerfile"]).exists()


def test_what_umbrella_charts_and_operators_pass_lands_where_expected():
    docs = render(values_of(CHART / "ci" / "umbrella-values.yaml"))
    deploy = by_kind(docs, "Deployment")[0]
    assert deploy["metadata"]["name"] == "china-risk"
    pod = deploy["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "china-desk"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "risk"
    assert pod["metadata"]["annotations"]["example.com/owner"] == "china-desk"
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["CHIPRISK__LOG__LEVEL"] == "debug"
    endpoint = by_kind(docs, "ServiceMonitor")[0]["spec"]["endpoints"][0]
    assert endpoint["scrapeTimeout"] == "10s"
    assert endpoint["relabelings"][0]["targetLabel"] == "node"
    assert endpoint["metricRelabelings"][0]["action"] == "drop"
    rules = by_kind(docs, "PrometheusRule")[0]["spec"]["groups"]
    assert all('job="risk"' in r["expr"] for g in rules for r in g["rules"]), "the job follows nameOverride"


def chart_readme():
    """scripts/chart-readme as a module."""
    loader = importlib.machinery.SourceFileLoader("chart_readme", str(ROOT / "scripts" / "chart-readme"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("chart_readme", loader))
    loader.exec_module(module)
    return module


def notes(values):
    out = helm.Chart.load(str(CHART)).render(values, name="risk", namespace="chiprisk")
    return next(text for path, text in out.items() if path.endswith("NOTES.txt"))


def test_the_notes_warn_when_kube_prometheus_stack_would_ignore_the_monitors():
    bare = notes({"monitoring": {"assumeCRDs": True}})
    assert "the ServiceMonitor has no `release` label" in bare
    assert "the PrometheusRule has no `release` label" in bare
    labelled = notes(values_of(CHART / "ci" / "monitoring-on-values.yaml"))
    assert "WARNING" not in labelled
    assert "WARNING" not in notes({}), "no monitoring resources offline: nothing to warn about"


def test_the_dashboard_has_what_an_analyst_opens_first():
    d = json.loads(DASHBOARD.read_text())
    assert [v["name"] for v in d["templating"]["list"]][:4] == ["datasource", "job", "namespace", "vendor"]
    panels = [p for p in d["panels"] if p["type"] != "row"]
    for p in panels:
        assert p.get("description"), f"{p['title']}: no description"
        units = [p["fieldConfig"]["defaults"].get("unit")] + [
            prop["value"] for o in p["fieldConfig"]["overrides"] for prop in o["properties"] if prop["id"] == "unit"]
        assert any(units), f"{p['title']}: no unit"
    components = next(p for p in panels if "components" in p["title"])
    assert components["repeat"] == "vendor", "one panel per vendor"
    assert "sum" not in components["targets"][0]["expr"], "never summed across vendors"
    bans = next(p for p in panels if p["title"] == "Bans in force")
    assert bans["transformations"][0]["options"]["renameByName"]["Value"] == "since"
    assert any(p["title"] == "Latest event per vendor" for p in panels)
    recent = next(p for p in panels if p["title"] == "Recent policy changes")
    assert "chiprisk_policy_change_timestamp_seconds" in recent["targets"][0]["expr"]
    assert any("fresh" in p["title"] for p in panels)
    assert any("/api/v1/scores/" in link["url"] for p in panels for link in p["fieldConfig"]["defaults"].get("links", []))
    for a in d["annotations"]["list"]:
        assert a["useValueForTime"] and 'vendor=~"$vendor"' in a["expr"], "at event time, filtered by vendor"
        assert "pod" in a["expr"] and "without" in a["expr"], "one series however many replicas and restarts"
