"""The values that charts of the ecosystem (prometheus-community, Vector)
offer and operators expect: image registry and digest, common labels,
extra volumes and environment, scheduling, probes, extra objects."""

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from render import CHART, by_kind, render, render_sources, values_of

EXTRAS = CHART / "ci" / "extras-values.yaml"
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
DIGEST = "sha256:" + "0123456789abcdef" * 4


def deployment(values):
    return by_kind(render(values), "Deployment")[0]


def pod(values):
    return deployment(values)["spec"]["template"]["spec"]


def container(values):
    return pod(values)["containers"][0]


@pytest.mark.parametrize("values, image", [
    ({}, f"ghcr.io/chiprisk/chiprisk:{APP_VERSION}"),
    ({"image": {"tag": "edge"}}, "ghcr.io/chiprisk/chiprisk:edge"),
    ({"global": {"imageRegistry": "registry.example.com"}}, f"registry.example.com/chiprisk/chiprisk:{APP_VERSION}"),
    ({"global": {"imageRegistry": "registry.example.com:5000/mirror/"}}, f"registry.example.com:5000/mirror/chiprisk/chiprisk:{APP_VERSION}"),
    ({"image": {"digest": DIGEST}}, f"ghcr.io/chiprisk/chiprisk@{DIGEST}"),
    ({"image": {"tag": "edge", "digest": DIGEST}}, f"ghcr.io/chiprisk/chiprisk@{DIGEST}"),
    ({"global": {"imageRegistry": "mirror.example.com"}, "image": {"digest": DIGEST}}, f"mirror.example.com/chiprisk/chiprisk@{DIGEST}"),
    # A repository that names no registry (Docker Hub) gets it in front.
    ({"global": {"imageRegistry": "mirror.example.com"}, "image": {"repository": "chiprisk/chiprisk"}}, f"mirror.example.com/chiprisk/chiprisk:{APP_VERSION}"),
    ({"global": {"imageRegistry": "mirror.example.com"}, "image": {"repository": "localhost:5000/chiprisk"}}, f"mirror.example.com/chiprisk:{APP_VERSION}"),
    ({"global": {"imageRegistry": "mirror.example.com"}, "image": {"repository": "chiprisk"}}, f"mirror.example.com/chiprisk:{APP_VERSION}"),
], ids=["default", "tag", "registry", "registry-with-port-and-path", "digest", "digest-over-tag", "registry-and-digest",
        "hub-repository", "localhost-registry", "bare-name"])
def test_the_image_reference_follows_the_registry_tag_and_digest(values, image):
    assert container(values)["image"] == image


def test_the_extras_case_pins_the_image_by_digest_from_the_mirror():
    assert container(values_of(EXTRAS))["image"] == (
        "mirror.example.com/chiprisk/chiprisk@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")


def test_common_labels_are_on_every_resource_and_the_pods_but_never_in_a_selector():
    values = {**values_of(EXTRAS), "monitoring": {"assumeCRDs": True}}
    sources = render_sources(values)
    kinds = set()
    for source, d in sources:
        if source.endswith("extra-objects.yaml"):
            continue
        kinds.add(d["kind"])
        assert d["metadata"]["labels"]["team"] == "china-desk", d["kind"]
        assert d["metadata"]["labels"]["cost-center"] == "4711", d["kind"]
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy",
            "ServiceMonitor", "PrometheusRule"} <= kinds
    docs = [d for _, d in sources]
    dep = by_kind(docs, "Deployment")[0]
    assert dep["spec"]["template"]["metadata"]["labels"]["team"] == "china-desk"
    # Selectors are immutable: commonLabels must never reach them.
    default = by_kind(render({}), "Deployment")[0]["spec"]["selector"]
    assert dep["spec"]["selector"] == default
    assert by_kind(docs, "Service")[0]["spec"]["selector"] == default["matchLabels"]
    # They cannot rename the chart's own labels either.
    renamed = deployment({"commonLabels": {"app.kubernetes.io/name": "other", "team": "x"}})
    assert renamed["metadata"]["labels"]["app.kubernetes.io/name"] == "chiprisk"
    assert renamed["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "chiprisk"


def test_extra_volumes_environment_priority_and_history_land_in_the_pod():
    dep = deployment(values_of(EXTRAS))
    assert dep["spec"]["revisionHistoryLimit"] == 3
    spec = dep["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "chiprisk-high"
    c = spec["containers"][0]
    assert c["envFrom"] == [{"configMapRef": {"name": "chiprisk-settings"}},
                            {"secretRef": {"name": "chiprisk-proxy", "optional": True}, "prefix": "PROXY_"}]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["scratch"] == {"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}}
    assert volumes["vendor-notes"]["configMap"]["name"] == "chiprisk-settings"
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["scratch"]["mountPath"] == "/tmp"
    assert mounts["vendor-notes"] == {"name": "vendor-notes", "mountPath": "/var/lib/chiprisk/notes", "readOnly": True}
    assert mounts["config"]["mountPath"] == "/etc/chiprisk", "the chart's own mounts stay"
    # And none of it by default.
    default = deployment({})
    assert default["spec"]["revisionHistoryLimit"] == 10
    assert "priorityClassName" not in default["spec"]["template"]["spec"]
    assert "envFrom" not in default["spec"]["template"]["spec"]["containers"][0]
    assert [v["name"] for v in default["spec"]["template"]["spec"]["volumes"]] == ["config"]


def test_probe_values_are_merged_over_the_defaults():
    c = container(values_of(EXTRAS))
    assert c["livenessProbe"] == {"httpGet": {"path": "/healthz", "port": "probes"}, "periodSeconds": 10,
                                  "timeoutSeconds": 5, "failureThreshold": 6}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["readinessProbe"]["periodSeconds"] == 5
    assert c["startupProbe"]["failureThreshold"] == 60 and c["startupProbe"]["periodSeconds"] == 2
    # Another handler: the default one set to null.
    dep = deployment({"livenessProbe": {"httpGet": None, "tcpSocket": {"port": "http"}}})
    live = dep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    assert live == {"tcpSocket": {"port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3}
    kubernetes_validate.validate(dep, "1.32.0", strict=True)
    # A probe set to null is left out.
    assert "startupProbe" not in container({"startupProbe": None})


def test_topology_spread_constraints_add_to_the_spread_over_nodes():
    spec = pod(values_of(EXTRAS))
    selector = deployment({})["spec"]["selector"]
    hostname, zone = spec["topologySpreadConstraints"]
    assert hostname["topologyKey"] == "kubernetes.io/hostname"
    assert zone == {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": selector}, "an entry without labelSelector selects the release's pods"
    # A constraint of one's own on nodes replaces the convenience one (Kubernetes refuses two).
    own = {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
           "labelSelector": {"matchLabels": {"app": "x"}}}
    assert pod({"topologySpreadConstraints": [own]})["topologySpreadConstraints"] == [own]
    only_zone = pod({"spreadAcrossNodes": False, "topologySpreadConstraints": [{**zone, "maxSkew": 3}]})
    assert only_zone["topologySpreadConstraints"] == [{**zone, "maxSkew": 3}]


def test_extra_objects_are_rendered_with_tpl_as_maps_or_strings():
    extra = [d for source, d in render_sources(EXTRAS) if source.endswith("extra-objects.yaml")]
    assert [(d["kind"], d["metadata"]["name"]) for d in extra] == [("ConfigMap", "chiprisk-settings"), ("PriorityClass", "chiprisk-high")]
    assert extra[0]["metadata"]["labels"]["app.kubernetes.io/instance"] == "risk"
    assert "release risk:" in extra[1]["description"]
    assert not [s for s, _ in render_sources({}) if s.endswith("extra-objects.yaml")]


@pytest.mark.parametrize("values", [
    {"image": {"digest": "0123"}},
    {"kafka": {"tls": {"ca": {"secret": "a", "configMap": "b"}}}},
    {"livenessProbe": {"periodSecond": 5}},
    {"extraVolumeMounts": [{"name": "x", "mountPath": "/etc/chiprisk/kafka-tls"}]},
    {"commonLabels": {"tier": 1}},
    {"networkPolicy": {"ingressFrom": [{"namespaceSelectr": {}}]}},
    {"topologySpreadConstraints": [{"topologyKey": "zone"}]},
], ids=["digest", "ca-twice", "probe-typo", "mount-over-config", "label-not-string", "peer-typo", "spread-incomplete"])
def test_values_outside_the_schema_are_refused(values):
    with pytest.raises(helm.HelmError):
        render(values)


@pytest.mark.parametrize("config", [
    {"kafka": {"properties": {"sasl.password": "hunter2"}}},
    {"kafka": {"properties": {"sasl_password": "hunter2"}}},
    {"kafka": {"properties": {"ssl.key.pem": "-----BEGIN"}}},
    {"kafka": {"properties": {"sasl.jaas.config": "x"}}},
    {"kafka": {"properties": {"sasl.oauthbearer.client.secret": "x"}}},
    {"http": {"api_token": "t0ken"}},
    {"http": {"metrics_token": "t0ken"}},
], ids=["password", "password-underscored", "pem", "jaas", "client-secret", "api-token", "metrics-token"])
def test_secrets_in_config_are_refused_since_it_becomes_a_configmap(config):
    with pytest.raises(helm.HelmError) as refused:
        render({"config": config})
    assert "schema" in str(refused.value), refused.value


def test_config_without_secrets_and_paths_to_secrets_still_render():
    config = {"kafka": {"brokers": "b:9093", "properties": {"security.protocol": "SASL_SSL", "sasl.username": "u",
                                                           "ssl.key.location": "/etc/x/tls.key"}},
              "http": {"api_token_file": "/var/run/secrets/t"}}
    assert render({"config": config})
