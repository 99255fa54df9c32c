"""The chart's PrometheusRule rendered by Helm's Go SDK: shared by
scripts/render-rules (which writes deploy/prometheus/chiprisk-rules.yml) and
the chart tests (which check that file against it)."""

from pathlib import Path

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "chiprisk"

HEADER = """\
# chiprisk's Prometheus alert rules, for Prometheus without the
# prometheus-operator. Generated: the Helm chart's PrometheusRule rendered
# with its default values (scripts/render-rules); tests/chart checks that
# this file matches. Tune thresholds, durations, severities and the policy
# window through the chart's monitoring.prometheusRule values, or edit a copy.
# What each alert means and what to do: docs/runbook.md.
"""


def render_rules(values):
    """The rule groups of the chart's PrometheusRule, released as "chiprisk"."""
    merged = {"monitoring": {"assumeCRDs": True}}
    for k, v in values.items():
        merged[k] = v if k != "monitoring" else {**merged["monitoring"], **v}
    out = helm.Chart.load(str(CHART)).render(merged, name="chiprisk", namespace="chiprisk")
    for path, text in out.items():
        if path.endswith("prometheusrule.yaml"):
            return yaml.safe_load(text)["spec"]["groups"]
    raise AssertionError("the chart rendered no PrometheusRule")
