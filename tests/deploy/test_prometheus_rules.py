"""Alert rules and Prometheus config: promtool checks, promtool unit tests, coverage and annotations."""

from __future__ import annotations

import importlib.util
import subprocess

import pytest

from .helpers import ALERTS, DEPLOY, load_yaml, load_yaml_all, require_tool

PROMETHEUS_DIR = DEPLOY / "prometheus"
RUNBOOK_KEYS = {"summary", "description", "runbook"}
EXPECTED_ALERTS = {
    "MemabradDown", "MemabradNotReady", "MemabradNoTrajectories", "MemabradInvalidTrajectoriesHigh",
    "MemabradConsumerLagGrowing", "MemabradRepeatedRejections", "MemabradRolledBack",
    "MemabradRewardDropAfterPromotion", "MemabradEvaluationTimeouts",
}


def _promtool() -> str:
    return require_tool("promtool", "apt-get install prometheus; .ci/run installs it")


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120)


def _rules() -> list[dict]:
    return [r for g in load_yaml(ALERTS)["groups"] for r in g["rules"]]


def _alerts() -> list[dict]:
    return [r for r in _rules() if "alert" in r]


def test_promtool_check_rules() -> None:
    res = _run([_promtool(), "check", "rules", "alerts.yml"])
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_check_config() -> None:
    """The compose stack's prometheus.yml, including the rule file it loads (same directory)."""
    res = _run([_promtool(), "check", "config", "prometheus.yml"])
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_unit_tests() -> None:
    res = _run([_promtool(), "test", "rules", "alerts_test.yml"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout + res.stderr


def test_the_expected_alerts_exist() -> None:
    assert {a["alert"] for a in _alerts()} == EXPECTED_ALERTS


@pytest.mark.parametrize("alert", sorted(EXPECTED_ALERTS))
def test_every_alert_is_unit_tested_firing(alert: str) -> None:
    """Each alert has a promtool test case in which it fires (and exact labels and annotations are checked)."""
    tests = load_yaml(PROMETHEUS_DIR / "alerts_test.yml")["tests"]
    firing = [case for t in tests for case in t.get("alert_rule_test", [])
              if case["alertname"] == alert and case.get("exp_alerts")]
    assert firing, f"no promtool test case expects {alert} to fire"
    quiet = [case for t in tests for case in t.get("alert_rule_test", [])
             if case["alertname"] == alert and not case.get("exp_alerts")]
    assert quiet, f"no promtool test case checks that {alert} stays quiet"


@pytest.mark.parametrize("alert", sorted(EXPECTED_ALERTS))
def test_every_alert_says_what_to_do(alert: str) -> None:
    rule = next(a for a in _alerts() if a["alert"] == alert)
    annotations = rule.get("annotations", {})
    assert set(annotations) >= RUNBOOK_KEYS, f"{alert} lacks {RUNBOOK_KEYS - set(annotations)}"
    assert len(annotations["runbook"]) > 80, f"{alert}: the runbook annotation should say what to do"
    assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}


def test_recording_rules_follow_the_naming_convention() -> None:
    """level:metric[:operation], aggregated per router."""
    for rule in _rules():
        if "record" in rule:
            assert rule["record"].startswith("memabrad_router:"), rule["record"]


def test_the_alerts_are_documented() -> None:
    docs = (DEPLOY.parent / "docs" / "deploying.md").read_text(encoding="utf-8")
    for alert in EXPECTED_ALERTS:
        assert alert in docs, f"docs/deploying.md does not explain {alert}"


def test_prometheusrule_matches_alerts_yml() -> None:
    """deploy/kubernetes/prometheusrule.yaml is generated from alerts.yml and must not drift."""
    spec = importlib.util.spec_from_file_location("make_prometheusrule", PROMETHEUS_DIR / "make_prometheusrule.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = DEPLOY / "kubernetes" / "prometheusrule.yaml"
    (doc,) = load_yaml_all(path)
    assert doc["spec"]["groups"] == load_yaml(ALERTS)["groups"], (
        "prometheusrule.yaml is stale: python deploy/prometheus/make_prometheusrule.py > "
        "deploy/kubernetes/prometheusrule.yaml")
    assert path.read_text(encoding="utf-8") == module.render()
