"""The router learns the same thing whatever the units of its rewards and latencies."""

from __future__ import annotations

import math

import pytest

from memabrad.learning.outcome_scale import OutcomeScale
from memabrad.learning.router import Router
from memabrad.sim.generator import Simulator


def _learn(rows: list[dict], a: float, b: float, lat_factor: float = 1.0) -> Router:
    r = Router()
    for row in rows:
        x = r.featurizer.featurize(row["task"])
        o, d = row["outcome"], row["decision"]
        r.learn(x, d["route"], propensity=d["propensity"], reward=a * float(o["reward"]) + b,
                error=bool(o["error"]), latency_ms=lat_factor * float(o["latency_ms"]),
                group=row["task"].get("task_type"))
    return r


@pytest.mark.parametrize(("a", "b", "lat"), [(100.0, -50.0, 1.0), (0.01, 0.0, 1000.0)])
def test_predictions_follow_the_units_and_choices_do_not_change(a: float, b: float, lat: float) -> None:
    rows = Simulator(seed=5).generate(1500)
    base, scaled = _learn(rows, 1.0, 0.0), _learn(rows, a, b, lat)
    probe = Simulator(seed=6).generate(200)
    same = 0
    for row in probe:
        task, cands = row["task"], row["candidates"]
        x = base.featurizer.featurize(task)
        group = task.get("task_type")
        for route in cands:
            p, q = base.predict_outcome(x, route, group), scaled.predict_outcome(x, route, group)
            assert q.reward == pytest.approx(a * p.reward + b, rel=1e-6, abs=1e-6 * abs(a))
            assert q.error_rate == pytest.approx(p.error_rate, abs=1e-9)
            assert q.latency_ms == pytest.approx(lat * p.latency_ms, rel=1e-6, abs=1e-6 * lat)
        same += base.best(x, cands, group) == scaled.best(x, cands, group)
    assert same == len(probe)


def test_a_router_saved_and_restored_keeps_its_scale() -> None:
    rows = Simulator(seed=5).generate(300)
    r = _learn(rows, 1.0, 0.0)
    twin = Router.from_bytes(r.to_bytes())
    assert twin.scale == r.scale and twin.scale.reward.n == 300
    assert r.clone().scale == r.scale and r.clone().scale is not r.scale
    state = r.export_state()
    del state["outcome_scale"]  # a model saved before the scale existed
    assert Router.from_state(state).scale == OutcomeScale()


def test_no_contextual_step_before_there_is_a_spread() -> None:
    s = OutcomeScale()
    s.add(0.5, 1.0)
    s.add(0.5, 1.0)
    assert s.steps().tolist() == [0.0, 1.0, 0.0]
    s.add(1.0, 3.0)
    assert all(math.isfinite(v) and v > 0 for v in s.steps().tolist())
