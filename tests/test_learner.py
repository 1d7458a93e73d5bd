"""Tests of the per-router learner: holdout split, hint ordering, checkpoint determinism, snapshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from memabrad.config import Config, load_config
from memabrad.evaluation.benchmark import holdout_bucket, is_holdout
from memabrad.learning.features import Hint
from memabrad.learning.learner import RouterLearner
from memabrad.sim import Simulator
from memabrad.wire.trajectory import Trajectory


def _cfg(**env: str) -> Config:
    return load_config(None, {f"MEMABRAD_{k}": v for k, v in env.items()})


@pytest.fixture(scope="module")
def trajectories() -> list[Trajectory]:
    return [Trajectory.model_validate(r) for r in Simulator(seed=5).generate(4000)]


def _held_out_ids(ts: list[Trajectory], cfg: Config) -> list[str]:
    learner = RouterLearner.new("default", cfg)
    return [t.trajectory_id for t in ts if learner.observe(t)]


def test_holdout_split_is_stable_and_about_the_configured_fraction(trajectories: list[Trajectory]) -> None:
    ts = trajectories[:1500]
    first, second = _held_out_ids(ts, _cfg()), _held_out_ids(ts, _cfg())
    assert first == second
    assert first == [t.trajectory_id for t in ts if is_holdout(t.trajectory_id, 0.2)]
    assert 0.16 < len(first) / len(ts) < 0.24
    learner = RouterLearner.new("default", _cfg())
    for t in ts:
        learner.observe(t)
    assert learner.counters.benchmarked == len(first)
    assert learner.counters.trained == len(ts) - len(first)
    assert [i.trajectory_id for i in learner.window] == first


def test_holdout_bucket_is_the_same_in_another_process() -> None:
    ids = [f"default-s5-{i:08d}" for i in range(50)] + ["b3c1e2f0-7d4e-4c35-9a51-0c2b0d6f9e11"]
    code = ("import json, sys; from memabrad.evaluation.benchmark import holdout_bucket; "
            "print(json.dumps([holdout_bucket(i) for i in json.loads(sys.stdin.read())]))")
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(ids), capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": "4321"}, timeout=60, check=True)
    assert json.loads(proc.stdout) == [holdout_bucket(i) for i in ids]


def _trajectory(tid: str, text: str, route: str = "tool.web_search", reward: float = 0.9) -> Trajectory:
    return Trajectory.model_validate({
        "schema_version": 1, "trajectory_id": tid, "occurred_at": "2026-01-01T00:00:00Z",
        "task": {"input": text, "task_type": "qa"}, "candidates": ["direct", "tool.web_search"],
        "decision": {"route": route, "propensity": 0.5}, "outcome": {"reward": reward, "error": False,
                                                                       "latency_ms": 100},
    })


def _held_out_id(prefix: str, fraction: float) -> str:
    return next(f"{prefix}-{i}" for i in range(10_000) if is_holdout(f"{prefix}-{i}", fraction))


def test_hint_is_looked_up_before_the_trajectory_is_added() -> None:
    learner = RouterLearner.new("default", _cfg(EVALUATION__HOLDOUT_FRACTION="0.5"))
    text = "what is the latest gold price today"
    first = _trajectory(_held_out_id("a", 0.5), text)
    second = _trajectory(_held_out_id("b", 0.5), text, route="direct")
    assert learner.observe(first) and learner.observe(second)
    x_first, x_second = (i.x for i in learner.window)
    feat = learner.challenger.featurizer
    assert x_first == feat.featurize(first.task)  # no hint: the task was not yet in the index
    assert x_second == feat.featurize(second.task, Hint("tool.web_search", 1.0))  # the first one's route
    assert x_second != x_first


def test_case_index_keeps_the_best_route_and_can_be_disabled() -> None:
    learner = RouterLearner.new("default", _cfg())
    learner.observe(_trajectory("t1", "plan a trip to rome", route="direct", reward=0.2))
    learner.observe(_trajectory("t2", "plan a trip to rome", route="tool.web_search", reward=0.8))
    hint = learner.case_index.hint("plan a trip to rome")
    assert hint is not None and hint.route == "tool.web_search"
    off = RouterLearner.new("default", _cfg(CASE_INDEX__ENABLED="false"))
    off.observe(_trajectory("t1", "plan a trip to rome"))
    assert len(off.case_index) == 0


def _learn(learner: RouterLearner, ts: list[Trajectory]) -> RouterLearner:
    for t in ts:
        learner.observe(t)
    return learner


def _through_json(learner: RouterLearner, cfg: Config) -> RouterLearner:
    return RouterLearner.from_state(json.loads(json.dumps(learner.to_state())), cfg)


def test_state_round_trip_is_exact(trajectories: list[Trajectory]) -> None:
    cfg = _cfg()
    learner = _learn(RouterLearner.new("default", cfg), trajectories[:1000])
    twin = _through_json(learner, cfg)
    assert twin.to_state() == learner.to_state()
    assert twin.challenger.fingerprint() == learner.challenger.fingerprint()
    assert twin.counters == learner.counters and twin.span == learner.span


def test_checkpoint_then_continue_equals_uninterrupted_without_case_index(trajectories: list[Trajectory]) -> None:
    cfg = _cfg(CASE_INDEX__ENABLED="false")
    straight = _learn(RouterLearner.new("default", cfg), trajectories)
    resumed = _learn(_through_json(_learn(RouterLearner.new("default", cfg), trajectories[:2000]), cfg),
                     trajectories[2000:])
    assert resumed.challenger.fingerprint() == straight.challenger.fingerprint()
    assert resumed.to_state() == straight.to_state()


def test_checkpoint_then_continue_equals_uninterrupted_learning(trajectories: list[Trajectory]) -> None:
    cfg = _cfg()
    straight = _learn(RouterLearner.new("default", cfg), trajectories)
    resumed = _learn(_through_json(_learn(RouterLearner.new("default", cfg), trajectories[:2000]), cfg),
                     trajectories[2000:])
    assert resumed.challenger.fingerprint() == straight.challenger.fingerprint()


def test_snapshot_resets_since_evaluation_and_has_deterministic_report_ids(trajectories: list[Trajectory]) -> None:
    cfg = _cfg()
    a = _learn(RouterLearner.new("default", cfg), trajectories[:600])
    b = _learn(RouterLearner.new("default", cfg), trajectories[:600])
    assert a.counters.since_evaluation == 600
    snap_a, snap_b = a.snapshot(), b.snapshot()
    assert snap_a.report_id == snap_b.report_id
    assert snap_a.report_id.startswith("default-e000001-")
    assert a.counters.since_evaluation == 0 and a.counters.evaluations == 1
    assert a.span.count == 0
    assert snap_a.trained_since_last.count == a.counters.trained
    assert len(snap_a.window) == a.counters.benchmarked
    # The snapshot is frozen: further learning changes neither its challenger nor its window.
    fp, n = snap_a.challenger.fingerprint(), len(snap_a.window)
    _learn(a, trajectories[600:900])
    assert (snap_a.challenger.fingerprint(), len(snap_a.window)) == (fp, n)
    assert a.counters.since_evaluation == 300
    second = a.snapshot()
    assert second.sequence == 2 and second.report_id.startswith("default-e000002-")
    assert second.report_id != snap_a.report_id
    assert second.trained_since_last.first_id == next(
        t.trajectory_id for t in trajectories[600:900] if not is_holdout(t.trajectory_id, 0.2))


def test_snapshot_evidence(trajectories: list[Trajectory]) -> None:
    learner = _learn(RouterLearner.new("default", _cfg()), trajectories[:500])
    snap = learner.snapshot()
    ev: dict[str, Any] = snap.evidence()
    assert ev["trained_total"] == learner.counters.trained
    assert ev["benchmark_window"]["count"] == len(snap.window)
    assert ev["benchmark_window"]["first_id"] == snap.window[0].trajectory_id
    assert ev["challenger_sha256"] == snap.challenger.fingerprint()
    span = ev["trained_since_last_evaluation"]
    assert span["count"] == learner.counters.trained
    assert span["first_at"].endswith("Z")


def test_imputed_propensity_is_one_over_the_candidate_count() -> None:
    learner = RouterLearner.new("default", _cfg(EVALUATION__HOLDOUT_FRACTION="0.5"))
    raw = _trajectory(_held_out_id("imp", 0.5), "hello there").model_dump(mode="json")
    raw["decision"].pop("propensity")
    learner.observe(Trajectory.model_validate(raw))
    item = next(iter(learner.window))
    assert (item.propensity, item.imputed) == (0.5, True)
    assert learner.counters.imputed_propensities == 1


def test_supported_routes_cover_trained_and_held_out_routes(trajectories: list[Trajectory]) -> None:
    learner = _learn(RouterLearner.new("default", _cfg()), trajectories[:300])
    expected = {t.decision.route for t in trajectories[:300]}
    assert learner.supported_routes() == expected
