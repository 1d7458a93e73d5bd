"""The dashboard's and the alerts' PromQL against a real Prometheus scraping a real daemon.

An embedded broker, ``python -m memabrad run`` and a Prometheus (the shipped prometheus.yml, pointed at the
daemon, with the shipped alerts.yml loaded) run for the module. The daemon learns 4,000 simulated trajectories,
evaluates and promotes (point-estimate gates), and gets one admin rollback, so nearly every metric family has
samples. Then every panel query, annotation and rule expression is sent to /api/v1/query: each must parse and
evaluate, and every metric it names must be one the daemon exports (its HELP/TYPE is in /metrics) or a rule of
alerts.yml.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import clean_environ
from kafka_harness import DaemonProcess, Topics, http_get

from memabrad.kafka.embedded import EmbeddedBroker, free_port
from memabrad.sim import Simulator

from .helpers import (
    ALERTS,
    DASHBOARD,
    DEPLOY,
    Proc,
    healthcheck_command,
    http_post_form,
    load_yaml,
    require_tool,
    running,
    wait_until,
)

pytestmark = pytest.mark.e2e

TRAJECTORIES = 4000
GRAFANA_VARS = {"$router_id": ".*", "${router_id}": ".*", "$__rate_interval": "1m", "$__interval": "1m",
                "$__range": "5m"}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right", "and",
    "or", "unless", "offset", "bool", "le", "rate", "increase", "deriv", "histogram_quantile", "absent",
    "last_over_time", "min_over_time", "max_over_time", "round", "up",
}


@dataclass
class Stack:
    daemon_port: int
    prom_url: str
    daemon: DaemonProcess
    prometheus: Proc
    active_version: str

    def metrics(self) -> str:
        status, body = self.daemon.http_get("/metrics")
        assert status == 200
        return body.decode()

    def query(self, expr: str) -> dict[str, Any]:
        status, body = http_post_form(f"{self.prom_url}/api/v1/query", {"query": expr})
        data = json.loads(body)
        assert status == 200 and data.get("status") == "success", f"{expr}\n-> {status} {data}"
        return data["data"]

    def logs(self) -> str:
        return f"--- daemon ---\n{self.daemon.log_tail()}\n--- prometheus ---\n{self.prometheus.log_tail()}"


async def _produce(bootstrap: str, topic: str, rows: list[dict[str, Any]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        for row in rows:
            await producer.send(topic, json.dumps(row, separators=(",", ":")).encode(), key=row["router_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


def _prometheus_config(tmp: Path, daemon_port: int) -> Path:
    """The shipped prometheus.yml, scraping the test daemon every second, with the shipped rules."""
    cfg = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    cfg["rule_files"] = [str(ALERTS)]
    cfg["scrape_configs"] = [s for s in cfg["scrape_configs"] if s["job_name"] == "memabrad"]
    cfg["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{daemon_port}"]}]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = require_tool("prometheus", "apt-get install prometheus; .ci/run installs it")
    tmp = tmp_path_factory.mktemp("live")
    topics = Topics.default()  # a deployment's topic names
    daemon = DaemonProcess("daemon", broker.bootstrap_servers, tmp / "store", topics, "memabrad-live", tmp,
                           env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": "1000",
                                "MEMABRAD_PROMOTION__MODE": "point"})
    try:
        port = daemon.start().wait_ready(60).port
        prom_port = free_port()
        prom_args = [prometheus_bin, f"--config.file={_prometheus_config(tmp, port)}",
                     f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"]
        with running(prom_args, tmp / "prometheus.log", env=clean_environ(), cwd=tmp) as prometheus:
            prom_url = f"http://127.0.0.1:{prom_port}"
            rows = Simulator(seed=1).generate(TRAJECTORIES)
            asyncio.run(_produce(broker.bootstrap_servers, topics.trajectories, rows))

            def evaluated_and_promoted() -> str | None:
                """Every evaluation (one per 1,000 trajectories) finished, and one of them promoted."""
                if daemon.metrics().sum("memabrad_evaluations_total") < TRAJECTORIES // 1000:
                    return None
                return (daemon.router("default") or {}).get("active_version")

            active = wait_until(evaluated_and_promoted, 90, "all evaluations done and a promotion")
            # one admin rollback (unsigned: no admin key configured), through the documented command
            res = subprocess.run(
                [sys.executable, "-m", "memabrad", "admin", "rollback", active, "--router", "default",
                 "--bootstrap-servers", broker.bootstrap_servers, "--reason", "test", "--wait", "--timeout", "30"],
                capture_output=True, text=True, timeout=60, cwd=tmp, env=clean_environ(**topics.env()))
            assert res.returncode == 0, res.stdout + res.stderr
            s = Stack(port, prom_url, daemon, prometheus, active)

            def scraped() -> bool:
                """The rollback is in, and every series has a few samples (rate() and increase() need two)."""
                return all(s.query(f'min(count_over_time({m}{{job="memabrad"}}[1m])) >= {n}')["result"]
                           for m, n in (("memabrad_rollbacks_total", 2), ("memabrad_evaluations_total", 3),
                                        ("memabrad_trajectories_total", 3), ("memabrad_consumer_lag", 3)))

            try:
                wait_until(scraped, 60, "Prometheus to scrape the rollback, three times")
                yield s
            except BaseException:
                print(s.logs())
                raise
    finally:
        daemon.shutdown()


def _substitute(expr: str) -> str:
    for k in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(k, GRAFANA_VARS[k])
    assert "$" not in expr, expr
    return expr


def _dashboard_queries() -> list[tuple[str, str]]:
    d = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = [(f"panel {p['title']!r} {t['refId']}", t["expr"]) for p in d["panels"] if p["type"] != "row"
           for t in p["targets"]]
    out += [(f"annotation {a['name']!r}", a["expr"]) for a in d["annotations"]["list"] if "expr" in a]
    return out


def _rule_queries() -> list[tuple[str, str]]:
    rules = [r for g in load_yaml(ALERTS)["groups"] for r in g["rules"]]
    return [(f"rule {r.get('alert') or r.get('record')}", r["expr"]) for r in rules]


def _record_names() -> set[str]:
    return {r["record"] for g in load_yaml(ALERTS)["groups"] for r in g["rules"] if "record" in r}


def _metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers outside label matchers, not PromQL words)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_matchers = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_groupings = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1()",
                               without_matchers)
    without_ranges = re.sub(r"\[[^\]]*\]", "[]", without_groupings)
    names = set(re.findall(r"(?<![\w:.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", without_ranges))
    names -= PROMQL_WORDS
    names = {n for n in names if not re.fullmatch(r"\d+[smhdwy]?", n)}
    return names | ({"up"} if re.search(r"\bup\{", expr) else set())


def _exported_families(metrics_text: str) -> dict[str, str]:
    """Family name -> type from the HELP/TYPE lines of /metrics."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", metrics_text, re.M))


def _exists(name: str, families: dict[str, str]) -> bool:
    if name in families:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and families.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return True
    return False


ALL_QUERIES = _dashboard_queries() + _rule_queries()


def test_metric_name_extraction() -> None:
    expr = ('histogram_quantile(0.9, sum by (le, router_id) (rate(memabrad_x_bucket{router_id=~".*", a="b c"}[1m])))'
            ' or absent(up{job="memabrad"}) unless on (instance) memabrad_router:y offset 2m')
    assert _metric_names(expr) == {"memabrad_x_bucket", "up", "memabrad_router:y"}


@pytest.mark.parametrize(("where", "expr"), ALL_QUERIES, ids=[w for w, _ in ALL_QUERIES])
def test_query_runs_and_names_real_metrics(stack: Stack, where: str, expr: str) -> None:
    stack.query(_substitute(expr))  # parses and evaluates
    families = _exported_families(stack.metrics())
    records = _record_names()
    for name in _metric_names(expr):
        if name == "up" or name in records:
            continue
        assert _exists(name, families), f"{where}: {name} is not exported by the daemon"


def test_scraped_series_reach_prometheus(stack: Stack) -> None:
    """Metric families with samples in /metrics are in Prometheus, e.g. the ones the panels rely on."""
    status, body = http_get(f"{stack.prom_url}/api/v1/label/__name__/values")
    names = set(json.loads(body)["data"])
    sampled = {line.split("{")[0].split(" ")[0] for line in stack.metrics().splitlines()
               if line and not line.startswith("#")}
    wanted = {n for n in sampled if n.startswith("memabrad_") and not n.endswith("_created")}
    assert wanted - names == set()
    for needed in ("memabrad_gate_value", "memabrad_gate_threshold", "memabrad_gate_passed",
                   "memabrad_policy_reward", "memabrad_active_router_info", "memabrad_evaluations_total",
                   "memabrad_rollbacks_total", "memabrad_event_processing_seconds_bucket", "memabrad_consumer_lag"):
        assert needed in names, needed


def test_panels_show_data(stack: Stack) -> None:
    """The main views are not empty on a daemon that has evaluated, promoted and rolled back."""
    for where, expr in _dashboard_queries():
        if any(k in where for k in ("Gate pass", "Reward: baseline", "Active version", "Trajectories by result",
                                    "Processing latency", "Consumer lag", "Evaluations by outcome")):
            result = stack.query(_substitute(expr))["result"]
            assert result, f"{where} is empty"
    active = stack.query(_substitute('max by (router_id, version_id) (memabrad_active_router_info{router_id=~".*"})'))
    assert {r["metric"]["version_id"] for r in active["result"]} == {stack.active_version}


def test_rules_evaluate_without_errors(stack: Stack) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        status, body = http_get(f"{stack.prom_url}/api/v1/rules")
        groups = json.loads(body)["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else None

    rules = wait_until(evaluated, 30, "every rule to be evaluated")
    assert len(rules) == len(_rule_queries())
    bad = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not bad, bad

    def rolled_back_alert() -> dict[str, Any] | None:
        alert = next(r for r in evaluated() or [] if r["name"] == "MemabradRolledBack")
        return alert if alert["state"] == "firing" else None

    # the rollback just happened: the alert fires (it has no `for`), and the router's recording rules have data
    alert = wait_until(rolled_back_alert, 30, "MemabradRolledBack to fire")
    assert {a["labels"]["router_id"] for a in alert["alerts"]} == {"default"}
    assert {a["labels"]["trigger"] for a in alert["alerts"]} == {"admin"}
    assert stack.query('memabrad_router:policy_reward:owner{router_id="default"}')["result"]


def test_router_variable_finds_the_router(stack: Stack) -> None:
    d = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    var = next(v for v in d["templating"]["list"] if v["name"] == "router_id")
    m = re.fullmatch(r"label_values\((\w+), (\w+)\)", var["definition"])
    assert m, var["definition"]
    status, body = http_get(f"{stack.prom_url}/api/v1/label/{m.group(2)}/values?match[]={m.group(1)}")
    assert json.loads(body)["data"] == ["default"]


def test_docker_healthcheck_command_works(stack: Stack) -> None:
    """The Dockerfile's HEALTHCHECK, run as is against the daemon, and against a port nobody listens on."""
    cmd = [sys.executable if c == "python" else c for c in healthcheck_command()]
    ok = subprocess.run(cmd, env=clean_environ(MEMABRAD_HTTP__PORT=str(stack.daemon_port)), capture_output=True,
                        timeout=30)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(cmd, env=clean_environ(MEMABRAD_HTTP__PORT=str(free_port())), capture_output=True, timeout=30)
    assert bad.returncode != 0
