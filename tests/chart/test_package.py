"""The chart as it is published: packaged by Helm, with its README, its
metadata (Artifact Hub, versions, minimum versions) and one home URL, the
one Cargo.toml names."""

import re
import subprocess
import sys
import tarfile
import tomllib
import xml.etree.ElementTree as ET

import helm_python as helm
import yaml

from render import CHART, ROOT, by_kind, render, render_sources

CARGO = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]
CHART_YAML = yaml.safe_load((CHART / "Chart.yaml").read_text())
MONITORING = {"monitoring": {"assumeCRDs": True}}


def test_the_packaged_chart_alone_renders_every_manifest_the_dashboard_included(tmp_path):
    archive = helm.package(str(CHART), destination=str(tmp_path / "dist"))
    assert archive.endswith(f"chiprisk-{CHART_YAML['version']}.tgz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert not [m.name for m in tar.getmembers() if m.issym() or m.islnk()], "no links in the package"
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert {"chiprisk/Chart.yaml", "chiprisk/values.yaml", "chiprisk/values.schema.json", "chiprisk/README.md",
            "chiprisk/files/chiprisk-dashboard.json"} <= set(names)
    assert "chiprisk/README.md.tmpl" not in names and "chiprisk/icon.svg" not in names, ".helmignore"
    # Rendered from the unpacked archive alone (nothing else in that directory) and from the archive itself.
    for chart in (tmp_path / "unpacked" / "chiprisk", archive):
        packaged = render_sources(MONITORING, chart=chart)
        assert packaged == render_sources(MONITORING), chart
        dashboard = next(d for _, d in packaged if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard"))
        assert dashboard["data"]["chiprisk-dashboard.json"] == (CHART / "files" / "chiprisk-dashboard.json").read_text().rstrip("\n")
    kinds = {d["kind"] for _, d in render_sources(MONITORING, chart=archive)}
    assert kinds == {"ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "PrometheusRule", "Service",
                     "ServiceAccount", "ServiceMonitor"}


def test_the_dashboard_is_a_file_of_the_chart_and_deploy_grafana_links_to_it():
    chart_file = CHART / "files" / "chiprisk-dashboard.json"
    link = ROOT / "deploy" / "grafana" / "chiprisk-dashboard.json"
    assert not chart_file.is_symlink()
    assert link.is_symlink() and not link.readlink().is_absolute()
    assert link.resolve() == chart_file.resolve()


def test_the_readme_is_current():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "chart-readme"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_readme_documents_every_value_and_states_the_minimum_versions():
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in ["image.digest", "global.imageRegistry", "commonLabels", "extraVolumes", "extraVolumeMounts", "envFrom",
                "priorityClassName", "topologySpreadConstraints", "livenessProbe", "readinessProbe", "startupProbe",
                "revisionHistoryLimit", "extraObjects", "kafka.tls.ca.secret", "kafka.tls.ca.configMap",
                "kafka.tls.clientCertificate.secret", "networkPolicy.monitoringNamespace", "networkPolicy.allowAll"]:
        assert f"\n| {key} |" in readme, key
    assert values["networkPolicy"]["enabled"] is True
    kube = re.match(r">=(\d+\.\d+)\.0-0$", CHART_YAML["kubeVersion"]).group(1)
    a = CHART_YAML["annotations"]
    assert f"| Kubernetes | {kube} |" in readme
    assert f"| Prometheus Operator (optional) | {a['chiprisk/minimum-prometheus-operator-version']} |" in readme
    assert f"| Prometheus (optional) | {a['chiprisk/minimum-prometheus-version']} |" in readme
    assert f"oci://ghcr.io/chiprisk/charts/chiprisk --version {CHART_YAML['version']}" in readme


def test_the_minimum_monitoring_versions_cover_keep_firing_for():
    """keep_firing_for came with Prometheus 2.42.0 and with the Prometheus
    Operator 0.66.0's PrometheusRule (prometheus-operator#5651)."""
    rule = by_kind(render(MONITORING), "PrometheusRule")[0]
    assert any("keep_firing_for" in r for g in rule["spec"]["groups"] for r in g["rules"])
    version = lambda v: tuple(int(x) for x in v.split("."))
    a = CHART_YAML["annotations"]
    assert version(a["chiprisk/minimum-prometheus-version"]) >= (2, 42, 0)
    assert version(a["chiprisk/minimum-prometheus-operator-version"]) >= (0, 66, 0)


def test_the_chart_version_app_version_and_default_image_are_the_crates():
    assert CHART_YAML["version"] == CARGO["version"]
    assert CHART_YAML["appVersion"] == CARGO["version"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["image"]["tag"] == "" and values["image"]["digest"] == ""
    # What the release workflow pushes: the image and the chart's repository.
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())["env"]
    assert release["IMAGE"] == "ghcr.io/chiprisk/chiprisk"
    assert f"{release['CHART_REPOSITORY']}/chiprisk --version" in (CHART / "README.md").read_text()
    image = f"{release['IMAGE']}:{CARGO['version']}"
    assert f"{values['image']['repository']}:{CHART_YAML['appVersion']}" == image
    assert by_kind(render({}), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"] == image
    images = yaml.safe_load(CHART_YAML["annotations"]["artifacthub.io/images"])
    assert [i["image"] for i in images] == [image]


def test_home_sources_links_icon_and_runbook_derive_from_the_crates_home():
    home = CARGO["homepage"]
    assert home == CARGO["repository"] == "https://github.com/chiprisk/chiprisk"
    assert CHART_YAML["home"] == home
    assert CHART_YAML["sources"] == [CARGO["repository"]]
    links = yaml.safe_load(CHART_YAML["annotations"]["artifacthub.io/links"])
    assert links and all(link["url"].startswith(home) for link in links)
    assert CHART_YAML["annotations"]["artifacthub.io/license"] == CARGO["license"]
    assert CHART_YAML["annotations"]["artifacthub.io/prerelease"] == "false"
    # The icon is served from the repository's main branch: it must be there.
    owner_repo = home.removeprefix("https://github.com/")
    prefix = f"https://raw.githubusercontent.com/{owner_repo}/main/"
    assert CHART_YAML["icon"].startswith(prefix)
    icon = ROOT / CHART_YAML["icon"].removeprefix(prefix)
    assert ET.parse(icon).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    # The runbook: no URL in values, the alerts link <home>/blob/main/docs/runbook.md.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["monitoring"]["prometheusRule"]["runbookUrl"] == ""
    rule = by_kind(render(MONITORING), "PrometheusRule")[0]
    urls = {r["annotations"]["runbook_url"].split("#")[0] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert urls == {f"{home}/blob/main/docs/runbook.md"}
    assert (ROOT / "docs" / "runbook.md").exists()
    own = by_kind(render({**MONITORING, "monitoring": {"assumeCRDs": True, "prometheusRule": {"runbookUrl": "https://wiki.example.com/chiprisk"}}}), "PrometheusRule")[0]
    assert {r["annotations"]["runbook_url"].split("#")[0] for g in own["spec"]["groups"] for r in g["rules"]} == {"https://wiki.example.com/chiprisk"}
