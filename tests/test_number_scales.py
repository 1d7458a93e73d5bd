"""Numbers as standardised linear terms (features version 5, ``learning/number_scales.py``)."""

from __future__ import annotations

import math
import random
from typing import Any

from memabrad.config import Config
from memabrad.learning.features import Featurizer, stable_hash
from memabrad.learning.learner import RouterLearner
from memabrad.learning.number_scales import FREEZE_AT, MAX_NAMES, Z_CLIP, NumberScales
from memabrad.learning.router import Router, same_features
from memabrad.wire.trajectory import Trajectory

ROUTES = ["r0", "r1", "r2", "r3"]
DIMS = 8
WEIGHTS = [[random.Random(k * 100 + j).gauss(0, 1) for j in range(DIMS)] for k in range(len(ROUTES))]


def _embed_task(rng: random.Random) -> tuple[dict[str, Any], list[float]]:
    """A task carrying a signed embedding; route k succeeds with probability sigmoid(w_k . x)."""
    x = [rng.gauss(0.0, 1.0) * 40.0 + 7.0 for _ in range(DIMS)]  # units and offset a linear model must not mind
    z = [(v - 7.0) / 40.0 for v in x]
    p = [1.0 / (1.0 + math.exp(-2.0 * sum(w * v for w, v in zip(ws, z, strict=True)))) for ws in WEIGHTS]
    return {"input": "route this request", "features": {f"e{j}": v for j, v in enumerate(x)}}, p


def _trajectories(n: int, seed: int) -> list[Trajectory]:
    rng, out = random.Random(seed), []
    for i in range(n):
        task, p = _embed_task(rng)
        k = rng.randrange(len(ROUTES))
        out.append(Trajectory.model_validate({
            "schema_version": 1, "trajectory_id": f"t-{seed}-{i}", "router_id": "r", "task": task,
            "candidates": ROUTES, "decision": {"route": ROUTES[k], "propensity": 0.25},
            "outcome": {"reward": float(rng.random() < p[k]), "error": False, "latency_ms": 100.0},
            "occurred_at": "2026-12-04T00:00:00Z"}))
    return out


def _accuracy(router: Router, seed: int = 99, n: int = 400) -> float:
    """Share of fresh tasks routed to their truly best route."""
    rng, right = random.Random(seed), 0
    for _ in range(n):
        task, p = _embed_task(rng)
        right += router.choose(task, ROUTES).route == ROUTES[p.index(max(p))]
    return right / n


def test_a_name_gets_a_fixed_scale_after_its_first_values_and_never_again() -> None:
    s = NumberScales()
    for i in range(FREEZE_AT - 1):
        s.observe({"x": float(i), "const": 3.0, "bad": math.inf})
    assert s.z("x", 1.0) is None and len(s) == 0  # not yet: no term
    s.observe({"x": 1000.0, "const": 3.0})
    assert "x" in s.frozen and s.z("x", 1.0) is not None
    before = s.z("x", 10.0)
    for _ in range(500):
        s.observe({"x": 1e6})
    assert s.z("x", 10.0) == before  # fixed: a task's features do not move with later traffic
    assert s.z("const", 3.0) is None and "const" in s.pending  # a number that never varied has no term
    assert s.z("bad", 1.0) is None and "bad" not in s.pending
    assert s.z("x", 1e12) == Z_CLIP and s.z("x", -1e12) == -Z_CLIP


def test_numbers_at_the_float_limits_never_make_a_term_that_is_not_finite() -> None:
    s = NumberScales()
    for i in range(3 * FREEZE_AT):
        s.observe({"huge": 1.7e308 * (-1) ** i, "ok": float(i)})
    assert "huge" not in s.frozen  # its sums overflowed and started again, never frozen
    for v in (math.inf, -math.inf, 1e308, -1e308):
        z = s.z("ok", v)
        assert z is not None and math.isfinite(z) and abs(z) <= Z_CLIP
    assert s.z("ok", math.nan) is None
    task = {"input": "x", "features": {"ok": 1e308, "huge": -1e308}}
    assert all(math.isfinite(v) for v in Featurizer(numbers=s).featurize(task).values())


def test_scales_are_bounded_and_round_trip_exactly() -> None:
    s = NumberScales()
    for i in range(FREEZE_AT):
        s.observe({f"n{j}": float(i * j) for j in range(MAX_NAMES + 50)})
    assert len(s.frozen) + len(s.pending) == MAX_NAMES
    twin = NumberScales.from_state(s.to_state())
    assert twin.to_state() == s.to_state() and twin.frozen == s.frozen
    copy = s.copy()
    copy.observe({"n0": 1.0})  # n0 was 0 in every task so far: it varies now, in the copy only
    assert "n0" in copy.frozen and "n0" in s.pending and "n0" not in s.frozen


def test_the_linear_term_is_in_version_5_only_and_changes_nothing_for_tasks_without_numbers() -> None:
    s = NumberScales()
    for i in range(FREEZE_AT):
        s.observe({"tokens": float(10 + i)})
    task = {"input": "summarise this report", "task_type": "qa", "features": {"tokens": 50.0}}
    v5, v4 = Featurizer(numbers=s), Featurizer(version=4, numbers=s)
    key = stable_hash("z:tokens") & ((1 << 18) - 1)
    assert key in v5.featurize(task) and key not in v4.featurize(task)
    plain = {"input": "summarise this report", "task_type": "qa"}
    assert v5.featurize(plain) == v4.featurize(plain)


def test_a_linear_effect_of_numbers_in_any_units_is_learned_from_few_events() -> None:
    """An embedding in odd units: with standardised terms the router learns which route the numbers
    favour; on knots of their logarithm alone (version 4) it learns much less from the same events."""
    ts = _trajectories(3000, seed=1)
    results = {}
    for version in (4, 5):
        learner = RouterLearner.new("r", Config())
        learner.challenger = Router(features_version=version)
        learner.holdout_fraction = 0.0
        for t in ts:
            learner.observe(t)
        results[version] = _accuracy(learner.challenger)
    assert results[5] >= 0.78 and results[5] >= results[4] + 0.05, results


def test_scales_are_learned_from_trained_events_saved_with_the_model_and_shared_by_the_portfolio() -> None:
    cfg = Config.model_validate({"router": {"portfolio": [{"name": "bold", "learning_rate": 1.0}]}})
    learner = RouterLearner.new("r", cfg)
    for t in _trajectories(400, seed=2):
        learner.observe(t)
    main, bold = learner.challenger, learner.portfolio[0].router
    assert bold.numbers is main.numbers and len(main.numbers) == DIMS
    held = RouterLearner.new("r", cfg)
    held.holdout_fraction = 1.0
    for t in _trajectories(100, seed=2):
        held.observe(t)
    assert held.counters.benchmarked == 100 and not held.challenger.numbers.to_state()["pending"]  # not counted
    again = RouterLearner.from_state(learner.to_state(), cfg)
    assert again.portfolio[0].router.numbers is again.challenger.numbers
    assert again.challenger.numbers.to_state() == main.numbers.to_state()
    saved = Router.from_bytes(main.to_bytes())
    task = _trajectories(1, seed=3)[0].task
    assert saved.featurizer.featurize(task) == main.featurizer.featurize(task)
    assert same_features(saved, main) and not same_features(Router(), main)
    clone = main.clone()
    assert clone.numbers is not main.numbers and same_features(clone, main)
