"""Wrap alerts.yml in a Prometheus Operator PrometheusRule: deploy/kubernetes/prometheusrule.yaml.

Run after editing alerts.yml (tests/deploy checks that the two agree)::

    python deploy/prometheus/make_prometheusrule.py > deploy/kubernetes/prometheusrule.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ALERTS = Path(__file__).with_name("alerts.yml")
HEADER = ("# Generated from deploy/prometheus/alerts.yml by deploy/prometheus/make_prometheusrule.py; do not edit.\n"
          "# Needs the Prometheus Operator; label it for your Prometheus' ruleSelector if it has one.\n")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the expressions stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def prometheus_rule(alerts_path: Path = ALERTS) -> dict[str, Any]:
    """The PrometheusRule object holding alerts.yml's groups unchanged."""
    groups = yaml.safe_load(alerts_path.read_text(encoding="utf-8"))["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "memabrad", "namespace": "memabrad", "labels": {"app.kubernetes.io/name": "memabrad"}},
        "spec": {"groups": groups},
    }


def render(alerts_path: Path = ALERTS) -> str:
    """The file's text."""
    body = yaml.dump(prometheus_rule(alerts_path), Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return HEADER + body


if __name__ == "__main__":
    sys.stdout.write(render())
