"""The numbers' reward weights by recursive least squares (``learning/number_part.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from memabrad.learning.number_part import MAX_TERMS, RIDGE, NumberPart
from memabrad.learning.reward_index import RewardIndex
from memabrad.learning.router import Router


def _fit(part: NumberPart, keys: list[int], Z: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weights after the events, stepped as ``RouteModel.learn`` steps them (weighted residual times gain)."""
    beta = np.zeros(len(keys))
    for z, t, wi in zip(Z, y, w, strict=True):
        r = wi * (float(z @ beta) - t)
        gain, _ = part.step(keys, z, float(wi))
        beta -= gain * r
    return beta


@pytest.mark.parametrize("weighted", [False, True])
def test_weights_are_the_exact_ridge_fit(weighted: bool) -> None:
    rng = np.random.default_rng(3)
    n, d = 300, 6
    Z = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))  # correlated terms
    y = Z @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
    w = rng.uniform(0.5, 4.0, size=n) if weighted else np.ones(n)
    beta = _fit(NumberPart(), list(range(100, 100 + d)), Z, y, w)
    ridge = np.linalg.solve(Z.T @ (w[:, None] * Z) + RIDGE * np.eye(d), Z.T @ (w * y))
    np.testing.assert_allclose(beta, ridge, rtol=1e-8, atol=1e-10)


def test_residual_shrinks_by_the_returned_factor() -> None:
    part = NumberPart()
    keys, z, w = [7, 8], np.array([0.6, -0.8]), 2.0
    beta, r = np.zeros(2), 1.5  # a weighted residual
    gain, s = part.step(keys, z, w)
    after = w * (float(z @ (beta - gain * r)) - float(z @ beta)) + r
    assert after == pytest.approx(r / (1.0 + s))


def test_terms_past_the_cap_are_left_to_the_other_step() -> None:
    part = NumberPart()
    keys = list(range(MAX_TERMS + 5))
    gain, _ = part.step(keys, np.ones(len(keys)), 1.0)
    assert len(part) == MAX_TERMS and len(gain) == MAX_TERMS
    assert [k in part.keys for k in keys] == [True] * MAX_TERMS + [False] * 5
    assert part.p.shape == (MAX_TERMS, MAX_TERMS)


def test_state_round_trip_keeps_order_and_matrix() -> None:
    part = NumberPart()
    part.step([5, 3], np.array([1.0, 2.0]), 1.0)
    part.step([9, 3], np.array([0.5, -1.0]), 1.0)
    back = NumberPart.from_state(part.to_state())
    assert list(back.keys) == [5, 3, 9]
    assert back.p.tolist() == part.p.tolist()
    twin = part.copy()
    twin.step([5], np.array([1.0]), 1.0)
    assert twin.p.tolist() != part.p.tolist() and back.p.tolist() == part.p.tolist()


def _tasks(n: int, seed: int) -> list[dict]:
    """Tasks with 12 correlated numbers, some of them missing, and a reward linear in them."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(12, 12))
    out = []
    for _ in range(n):
        v = rng.normal(size=12) @ mix
        feats = {f"n{j}": float(v[j]) for j in range(12) if rng.random() > 0.15}
        out.append({"input": "route this", "features": feats})
    return out


def _teach(router: Router, tasks: list[dict], seed: int) -> None:
    rng = np.random.default_rng(seed)
    for t in tasks:
        router.numbers.observe(t["features"])  # as the learner does
        route = "a" if rng.random() < 0.7 else "b"
        score = sum(t["features"].values()) / 10.0
        reward = float(score > 0) if route == "a" else float(score <= 0)
        router.learn(router.featurizer.featurize(t), route, propensity=0.7 if route == "a" else 0.3,
                     reward=reward, error=False, latency_ms=100.0)


def test_the_live_index_keeps_every_fitted_weight() -> None:
    """A fit moves weights of numbers a task did not carry: the ranking table must follow them."""
    router = Router()
    tasks = _tasks(400, 1)
    router.reward_index()  # kept current from here on, as serving keeps it
    _teach(router, tasks, 2)
    assert any(len(m.number_part) == 12 for m in router.routes.values())
    rebuilt = RewardIndex.of(router.routes, router.shared)
    for t in _tasks(20, 3):
        x = router.featurizer.featurize(t)
        assert router.reward_index().contextual(x) == rebuilt.contextual(x)


def test_a_model_saved_before_keeps_learning_as_it_did() -> None:
    router = Router()
    _teach(router, _tasks(100, 1), 2)
    state = router.export_state()
    assert state["number_fit"] == "least_squares"
    del state["number_fit"]
    for r in state["routes"].values():
        r.pop("number_part", None)
    old = Router.from_state(state)
    assert not old.number_fit
    _teach(old, _tasks(100, 4), 5)
    assert all(len(m.number_part) == 0 for m in old.routes.values())
    assert "number_fit" not in old.export_state()


def test_fitted_numbers_learn_a_dense_linear_rule_fast() -> None:
    """Reward linear in 12 correlated numbers: after 400 events the routes rank 200 new tasks nearly
    all right (AdaGrad alone ranks far fewer right at that point)."""
    def right_share(fit: bool) -> float:
        router = Router(number_fit=fit)
        _teach(router, _tasks(400, 1), 2)
        ok = 0
        test = _tasks(200, 9)
        for t in test:
            best = router.best(router.featurizer.featurize(t), ["a", "b"])
            ok += (best == "a") == (sum(t["features"].values()) > 0)
        return ok / len(test)

    fitted, stepped = right_share(True), right_share(False)
    assert fitted >= 0.85
    assert fitted > stepped + 0.05
