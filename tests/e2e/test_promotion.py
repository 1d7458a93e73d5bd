"""Simulated traffic leads to a promotion: the event, the store and the metrics all agree."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
from kafka_harness import DaemonFactory, KafkaIO, Producer, Topics, evaluation_events

from memabrad.sim import Simulator
from memabrad.store import RouterVersionStore
from memabrad.wire import REQUIRED_GATES, parse_router_event

pytestmark = pytest.mark.e2e

N = 20_000
THRESHOLD = 2_000
SEED = 0  # with this seed and threshold the statistical gates promote twice (after 4,000 and 8,000)


def _outcome(ev: dict[str, object]) -> str:
    """The memabrad_evaluations_total outcome label an evaluation event stands for."""
    if ev["type"] == "router.promoted":
        return "promoted"
    if ev["type"] == "router.evaluated":
        return "dry_run"
    return "inconclusive" if ev["verdict"] == "inconclusive" else "rejected"


def _check_gates(gates: dict[str, dict[str, object]]) -> None:
    for name in REQUIRED_GATES:
        gate = gates[name]
        assert set(gate) >= {"value", "threshold", "passed"}, f"gate {name}: {gate}"
        assert isinstance(gate["value"], int | float) and math.isfinite(gate["value"]), f"gate {name}: {gate}"
        assert isinstance(gate["threshold"], int | float), f"gate {name}: {gate}"
        assert isinstance(gate["passed"], bool), f"gate {name}: {gate}"


def test_promotion_event_store_and_metrics(kafka: KafkaIO, daemons: DaemonFactory, producer: Producer) -> None:
    topics = Topics.unique("promotion")
    kafka.create_topics(topics)
    reader = kafka.events(topics.router_events)
    d = daemons.new("promotion", topics, env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": str(THRESHOLD)})
    d.wait_ready()

    producer.send_trajectories(topics.trajectories, Simulator(seed=SEED).generate(N))
    status = d.wait_consumed({0: N}, timeout=240)
    n_evaluations = N // THRESHOLD
    events = reader.wait_events(lambda es: es if len(evaluation_events(es)) >= n_evaluations else None, 60,
                                f"{n_evaluations} evaluation events")
    evals = evaluation_events(events)
    assert len(evals) == n_evaluations, [e["type"] for e in evals]

    # Events: at least one promotion, carrying gates and benchmark; versions chain.
    promoted = [e for e in evals if e["type"] == "router.promoted"]
    assert promoted, f"no promotion in {[(e['type'], e.get('verdict')) for e in evals]}"
    previous = None
    for ev in promoted:
        parse_router_event(json.dumps(ev))
        _check_gates(ev["gates"])
        assert all(ev["gates"][g]["passed"] for g in REQUIRED_GATES), ev["gates"]
        bench = ev["benchmark"]
        assert bench["task_count"] > 0 and bench["estimator"]
        for role in ("baseline", "challenger"):
            assert {"reward", "error_rate", "latency_ms"} <= set(bench[role]), bench[role]
        assert ev["previous_version_id"] == previous
        previous = ev["version_id"]
    # A look taken while the previous look's promotion was still being applied (looks every ~1 s here,
    # an evaluation that promotes takes about as long) gathered its evidence against the version that
    # was replaced: judged against the new one it has none, and must say so, not decide.
    stale = [ev for ev in evals if ev["benchmark"]["task_count"] == 0]
    for ev in stale:
        assert ev["type"] == "router.rejected" and ev["verdict"] == "inconclusive", ev["type"]
        assert ev["gates"]["reward_delta"]["value"] is None and not ev["gates"]["reward_delta"]["passed"]
        assert ev["benchmark"]["sequential"]["baseline_version_id"] in {p["version_id"] for p in promoted}
    for ev in evals:
        if ev not in stale:
            _check_gates(ev["gates"])
    # The evidence behind each decision: progressive, with the alpha it spends and the looks so far;
    # it restarts when a promotion changes the baseline, so looks count up between promotions.
    looks = 0
    for ev in evals:
        bench, seq = ev["benchmark"], ev["benchmark"]["sequential"]
        assert bench["method"] == "progressive" and seq["alpha_spent"] == pytest.approx(0.05), seq
        assert bench["holdout"]["task_count"] > 0 and "holdout_check" in ev["gates"]
        if ev in stale:
            continue
        assert seq["looks"] == looks + 1 and seq["trajectories"] == bench["task_count"] > 0, seq
        looks = 0 if ev["type"] == "router.promoted" else seq["looks"]

    # Store: every promoted version and every report is saved; current.json names the last promotion.
    base = d.base_dir
    store = RouterVersionStore(base, "default")
    for ev in promoted:
        meta_path = base / "default" / "router-versions" / "versions" / ev["version_id"] / "meta.json"
        meta = json.loads(meta_path.read_text())
        assert meta["version_id"] == ev["version_id"] and meta["report_id"] == ev["report_id"]
        store.verify_version(ev["version_id"])  # model data matches the sha256 in meta.json
    for ev in evals:
        report_path = base / "default" / "training-reports" / f"{ev['report_id']}.json"
        report = json.loads(report_path.read_text())
        assert report["report_id"] == ev["report_id"]
        assert report["gates"] == ev["gates"]
        assert (report["verdict"] == "promote") == (ev["type"] == "router.promoted")
    assert store.load_report(promoted[-1]["report_id"])["version_id"] == promoted[-1]["version_id"]
    current = json.loads((base / "default" / "router-versions" / "current.json").read_text())
    assert current["version_id"] == promoted[-1]["version_id"] == store.get_current()["version_id"]
    assert {m.version_id for m in store.list_versions()} == {e["version_id"] for e in promoted}

    # /status and /metrics agree with what was sent and published.
    router = d.status()["routers"]["default"]
    m = d.metrics()
    assert m.value("memabrad_trajectories_total", router_id="default", result="accepted") == N
    assert router["trajectories_learned"] == N
    assert router["duplicates"] == 0 and router["invalid"] == 0
    assert router["active_version"] == promoted[-1]["version_id"]
    assert router["last_evaluation"]["report_id"] == evals[-1]["report_id"]
    assert m.value("memabrad_trajectories_since_evaluation", router_id="default") == router["since_evaluation"]
    assert status["routers"]["default"]["since_evaluation"] == router["since_evaluation"] == N % THRESHOLD
    assert m.sum("memabrad_evaluations_total", router_id="default") == len(evals)
    by_outcome = {lab["outcome"]: v for lab, v in m.find("memabrad_evaluations_total", router_id="default")}
    assert by_outcome == dict(Counter(_outcome(e) for e in evals))
    assert m.sum("memabrad_evaluation_duration_seconds_count", router_id="default") == len(evals)
    active = m.find("memabrad_active_router_info", router_id="default")
    assert active == [({"router_id": "default", "version_id": promoted[-1]["version_id"]}, 1.0)]
    last_gates = evals[-1]["gates"]
    for gate in REQUIRED_GATES:
        assert m.value("memabrad_gate_value", router_id="default", gate=gate) == pytest.approx(
            last_gates[gate]["value"])
        assert m.value("memabrad_gate_threshold", router_id="default", gate=gate) == pytest.approx(
            last_gates[gate]["threshold"])
        assert m.value("memabrad_gate_passed", router_id="default", gate=gate) == float(last_gates[gate]["passed"])


def _untyped(row: dict[str, object]) -> dict[str, object]:
    """The row as an agent that sends no task type: its input after a long opening its family shares."""
    task = dict(row["task"])  # type: ignore[arg-type]
    family = task.pop("task_type")
    opening = f"you answer {family} requests; follow the examples below exactly. "
    task["input"] = opening * 8 + str(task["input"])
    return {**row, "task": task}


def test_untyped_traffic_is_grouped_by_text_and_the_promoted_version_serves_by_group(
        kafka: KafkaIO, daemons: DaemonFactory, producer: Producer) -> None:
    topics = Topics.unique("untyped")
    kafka.create_topics(topics)
    reader = kafka.events(topics.router_events)
    d = daemons.new("untyped", topics, env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": str(THRESHOLD)})
    d.wait_ready()
    rows = [_untyped(r) for r in Simulator(seed=SEED).generate(10_000)]
    producer.send_trajectories(topics.trajectories, rows)
    d.wait_consumed({0: len(rows)}, timeout=240)
    events = reader.wait_events(lambda es: es if len(evaluation_events(es)) >= 5 else None, 60, "5 evaluation events")
    promoted = [e for e in evaluation_events(events) if e["type"] == "router.promoted"]
    assert promoted, [(e["type"], e.get("verdict")) for e in evaluation_events(events)]

    from memabrad.learning.features import text_hashes
    from memabrad.learning.router import Router

    version = Router.load(d.base_dir / "default" / "router-versions" / "versions" / promoted[-1]["version_id"])
    families = {str(r["task"]["input"]).split(" requests;")[0] for r in rows}
    assert len(families) == 6 and len(version.text_groups) >= 6  # a group per family at least
    for r in rows[:50]:  # every family's task is served with a group
        assert version.group_of(None, text_hashes(str(r["task"]["input"]))) is not None
    # the numbers' fixed scales came with the version: it featurises a task as the daemon learned it
    assert {"tokens", "has_code", "history_sessions"} <= set(version.numbers.frozen)
    z_key = version.featurizer._key("z:tokens")
    assert z_key in version.featurizer.featurize(rows[0]["task"])
