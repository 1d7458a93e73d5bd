"""The Grafana dashboard and its provisioning, checked structurally (no Grafana here)."""

from __future__ import annotations

import json
import re
from typing import Any

from .helpers import DASHBOARD, DEPLOY, load_yaml

PROVISIONING = DEPLOY / "grafana" / "provisioning"
ROUTER_METRICS = ("memabrad_trajectories_total", "memabrad_trajectories_since_evaluation", "memabrad_evaluations_total",
                  "memabrad_gate_", "memabrad_policy_reward", "memabrad_rollbacks_total", "memabrad_active_router_info",
                  "memabrad_evaluation_duration_seconds", "memabrad_evaluation_timeouts_total")


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(d: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in d["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    return out


def _data_panels(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in _panels(d) if p["type"] != "row"]


def _exprs(d: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _data_panels(d) for t in p["targets"]]


def test_dashboard_is_valid_json_with_identity() -> None:
    d = _dashboard()
    assert d["uid"] == "memabrad" and d["title"]
    assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    assert "id" not in d or d["id"] is None, "an exported id breaks provisioning into another Grafana"


def test_panel_ids_are_unique() -> None:
    ids = [p["id"] for p in _panels(_dashboard())]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_panel_has_a_datasource_and_targets() -> None:
    for p in _data_panels(_dashboard()):
        assert p.get("datasource", {}).get("uid") == "${datasource}", p["title"]
        assert p.get("targets"), f"panel {p['title']!r} has no targets"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), f"panel {p['title']!r}: duplicate refIds"
        for t in p["targets"]:
            assert t.get("expr", "").strip(), f"panel {p['title']!r}: empty query"
            assert t.get("datasource", {}).get("uid") == "${datasource}", p["title"]


def test_panels_fit_the_grid_without_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in _panels(_dashboard()):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def test_template_variables() -> None:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    router = variables["router_id"]
    assert router["type"] == "query" and "router_id" in router["definition"]
    assert router["includeAll"] and router["multi"] and router["allValue"] == ".*"


def test_router_variable_is_used_by_every_per_router_query() -> None:
    d = _dashboard()
    used = 0
    for p in _data_panels(d):
        for t in p["targets"]:
            if any(m in t["expr"] for m in ROUTER_METRICS):
                assert 'router_id=~"$router_id"' in t["expr"], f"{p['title']!r}: {t['expr']}"
                used += 1
    for a in d["annotations"]["list"]:
        if "expr" in a:
            assert 'router_id=~"$router_id"' in a["expr"], a["name"]
    assert used >= 10


def test_the_required_views_are_there() -> None:
    d = _dashboard()
    exprs = "\n".join(_exprs(d))
    for needle in ("memabrad_gate_value", "memabrad_gate_threshold", "memabrad_gate_passed",
                   "sum by (outcome) (increase(memabrad_evaluations_total", "memabrad_trajectories_total",
                   "memabrad_consumer_lag", "histogram_quantile(0.99, sum by (le) (rate("
                   "memabrad_event_processing_seconds_bucket", "memabrad_active_router_info", "memabrad_policy_reward"):
        assert needle in exprs, needle
    for gate in ("reward_delta", "error_rate_delta", "latency_delta_ms", "task_count"):
        assert f'gate="{gate}"' in exprs, gate
    # the gated confidence bounds and the evidence behind them: trajectories, looks, alpha over all looks
    for gate in ("reward_delta", "error_rate_delta", "latency_delta_ms"):
        assert f'memabrad_gate_bound{{router_id=~"$router_id", gate="{gate}"}}' in exprs, gate
    for needle in ("memabrad_evidence_trajectories", "memabrad_evidence_looks", "memabrad_evidence_alpha"):
        assert needle in exprs, needle
    names = {a["name"]: a for a in d["annotations"]["list"]}
    assert "memabrad_evaluations_total" in names["Promotions"]["expr"] and 'outcome="promoted"' in \
        names["Promotions"]["expr"]
    assert "memabrad_rollbacks_total" in names["Rollbacks"]["expr"]
    timeline = next(p for p in _data_panels(d) if p["type"] == "state-timeline")
    mapping = timeline["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert mapping["0"]["text"] == "FAIL" and mapping["1"]["text"] == "PASS"


def test_queries_are_balanced() -> None:
    for expr in _exprs(_dashboard()):
        for o, c in ("()", "[]", "{}"):
            assert expr.count(o) == expr.count(c), expr
        assert not re.search(r"\$\{?(?!router_id|__rate_interval|__interval|__range)\w+", expr), expr


def test_provisioning_points_at_the_dashboard_and_datasource() -> None:
    (ds,) = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    current = next(v for v in _dashboard()["templating"]["list"] if v["name"] == "datasource")["current"]
    assert current["value"] == ds["uid"], "the dashboard's default data source is the provisioned one"
    (provider,) = load_yaml(PROVISIONING / "dashboards" / "memabrad.yml")["providers"]
    assert provider["type"] == "file"
    compose = load_yaml(DEPLOY / "compose" / "docker-compose.yml")
    mounts = compose["services"]["grafana"]["volumes"]
    dashboard_mount = next(m for m in mounts if m.startswith("../grafana/memabrad.json:"))
    assert dashboard_mount.split(":")[1].startswith(provider["options"]["path"] + "/")
    assert "../grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
