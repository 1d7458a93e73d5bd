"""The hot path's rewritten array code computes the very same floats as the plain formulas it replaced."""

from __future__ import annotations

import random

import numpy as np
import pytest

from memabrad.learning.case_index import CaseIndex
from memabrad.learning.features import text_hashes
from memabrad.learning.frozen import FrozenScorer
from memabrad.learning.pick import best_route
from memabrad.learning.reward_index import RewardIndex
from memabrad.learning.route_parts import TINY, adagrad_step, add_columns
from memabrad.learning.router import Router
from memabrad.learning.text_vectors import COUNT_CLIP, text_counts


@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_adagrad_step_equals_the_formula(l2: float) -> None:
    rng = np.random.default_rng(1)
    for n in (1, 3, 8, 22, 57):
        rows = rng.normal(size=(n, 6))
        rows[:, 3:] = np.abs(rows[:, 3:])
        vals = rng.normal(size=n)
        resid = rng.normal(size=3)
        want = rows.copy()
        grad = vals[:, None] * resid
        if l2:
            grad += l2 * want[:, :3]
        want[:, 3:] += grad * grad
        l1 = float(np.abs(vals).sum()) or 1.0
        step = (0.5 / l1) * grad / np.sqrt(want[:, 3:] + TINY)
        change = vals @ step  # no step moves the reward or latency prediction past its target (safe_step.py)
        for h in (0, 2):
            if abs(change[h]) > abs(resid[h]):
                step[:, h] *= abs(resid[h]) / abs(change[h])
        want[:, :3] -= step
        adagrad_step(rows, vals, resid, 0.5, l2)
        assert rows.tobytes() == want.tobytes()


def test_add_columns_known_and_new_features() -> None:
    col: dict[int, int] = {}
    a = np.zeros((2, 6))
    idx, a = add_columns(col, a, {5: 1.0, 9: 1.0})
    assert idx.tolist() == [0, 1]
    idx, a = add_columns(col, a, {9: 1.0, 5: 1.0})
    assert idx.tolist() == [1, 0] and a.shape == (2, 6)
    idx, a = add_columns(col, a, {9: 1.0, 7: 1.0, 5: 1.0})
    assert idx.tolist() == [1, 2, 0] and col == {5: 0, 9: 1, 7: 2} and a.shape == (4, 6)


def _plain_contextual(ix: RewardIndex, x: dict[int, float]) -> list[float]:
    keep = [k for k in x if k in ix._rows]
    vals = np.array([x[k] for k in keep], dtype=np.float64)
    p = vals @ ix._w[np.array([ix._rows[k] for k in keep], dtype=np.int64)]
    k = len(ix.routes)
    shared = p[3 * k :]  # the shared part's three heads, added to every route's
    return [float(p[h * k + j] + shared[h]) for h in range(3) for j in range(k)]


def test_reward_index_row_reuse_between_ranking_and_learning() -> None:
    rng = random.Random(2)
    ix = RewardIndex()
    heads: dict[tuple[str, int], np.ndarray] = {}
    for _ in range(400):
        x = {rng.randrange(60): rng.random() for _ in range(rng.randint(0, 8))}
        route = rng.choice(["a", "b", "c", "d"])
        if rng.random() < 0.8:  # ranked first (rows kept with x), as the record path does
            assert ix.contextual(x) == _plain_contextual(ix, x)
        if rng.random() < 0.2:
            ix.contextual({1000 + rng.randrange(5): 1.0})  # another task ranked in between
        w = np.array([[rng.random(), rng.random(), rng.random()] for _ in x]).reshape(len(x), 3)
        shared = np.array([[rng.random(), 0.0, rng.random()] for _ in x]).reshape(len(x), 3)
        ix.set(route, x, w, shared if rng.random() < 0.5 else None)
        for i, k in enumerate(x):
            heads[(route, k)] = w[i]
    for (route, k), w in heads.items():
        j, n = ix.col[route], len(ix.routes)
        assert ix._w[ix._rows[k], [j, n + j, 2 * n + j]].tolist() == w.tolist()
    twin = ix.copy()
    x = {k: 1.0 for k in range(0, 60, 7)}
    assert twin.contextual(x) == ix.contextual(x) == _plain_contextual(ix, x)


def test_case_vectors_are_stored_exactly() -> None:
    ci = CaseIndex(capacity=50)
    texts = [f"gold price {i} " + "spam " * (i * 40) for i in range(8)]  # counts past COUNT_CLIP too
    for i, t in enumerate(texts):
        ci.add(t, trajectory_id=f"t{i}", route="r", reward=0.5, error=False, latency_ms=1.0)
    for t in texts:
        key = ci.get(t).key
        slot = ci._slot[key]
        counts = text_counts(key, text_hashes(key))
        assert np.abs(counts).max() <= COUNT_CLIP
        assert (ci._vectors[slot].astype(np.float32) == counts).all()
        assert ci.lookup(t).similarity == 1.0


@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_a_stacked_adagrad_step_is_two_steps_bit_for_bit(l2: float) -> None:
    """A route's own rows and the shared part's are stepped in one pass on the same residual."""
    rng = np.random.default_rng(4)
    for n in (1, 3, 20):
        own, shared = rng.random((n, 6)), rng.random((n, 6))
        vals, resid = rng.random(n), rng.standard_normal(3)
        both = np.stack((own, shared))
        adagrad_step(own, vals, resid, 0.5, l2)
        adagrad_step(shared, vals, resid, 0.5, l2)
        adagrad_step(both, vals, resid, 0.5, l2)
        assert both[0].tobytes() == own.tobytes() and both[1].tobytes() == shared.tobytes()


def test_best_route_picks_as_min_with_a_key() -> None:
    rng = random.Random(4)
    values = [0.0, -0.0, 0.5, 1.0, 1.0, 2.0, float("nan"), float("inf"), -float("inf")]
    for _ in range(20_000):
        scores = {r: rng.choice(values) for r in rng.sample("abcdefg", rng.randint(1, 6))}
        assert best_route(scores) == min(scores, key=lambda r: (-scores[r], r))


def test_frozen_scores_equal_the_array_formula() -> None:
    """``FrozenScorer.scores`` in plain floats: the same numbers as the numpy expression it replaced."""
    rng = random.Random(5)
    r = Router()
    routes = ["direct", "tool.a", "tool.b", "tool.c"]
    for i in range(300):
        x = r.featurizer.featurize({"input": f"task {rng.randrange(40)} word{rng.randrange(9)}", "task_type": "q"})
        r.learn(x, rng.choice(routes[:3]), propensity=0.5, reward=rng.random(), error=rng.random() < 0.1,
                latency_ms=rng.random() * 900, group=rng.choice(["q", "z"]))
        if i % 50 == 49:
            fs = FrozenScorer(r)
            models = [r.routes[n] for n in fs._index.routes]
            for g in ("q", "z", None):
                y = r.featurizer.featurize({"input": f"task {rng.randrange(60)} word{rng.randrange(9)}"})
                consts = np.array([m.reward_constant(r.pessimism, g) for m in models])
                lam = np.array([m.lambdas()[0][1] for m in models])
                s = consts + lam * np.array(fs._index.contextual(y)[: len(models)])
                want = {n: float(s[fs._col[n]]) if n in fs._col else r.untrained_score() for n in routes}
                assert fs.scores(y, routes, g) == want


def test_a_priced_ranking_pays_the_penalty_of_its_own_predictions_exactly() -> None:
    """``Router.scores`` and ``FrozenScorer.scores`` take the guardrail penalty from the contextual parts
    (``guardrail_penalty``): the same floats as ``Prices.penalty`` of ``predict_outcome``'s predictions."""
    from memabrad.learning.guardrail_prices import Prices

    rng = random.Random(7)
    r = Router()
    routes = ["direct", "tool.a", "tool.b", "tool.c", "never"]
    for i in range(400):
        x = r.featurizer.featurize({"input": f"task {rng.randrange(40)} word{rng.randrange(9)}", "task_type": "q"})
        r.learn(x, rng.choice(routes[:4]), propensity=0.25, reward=rng.random(), error=rng.random() < 0.2,
                latency_ms=rng.random() * 3000, group=rng.choice(["q", "z"]))
        if i % 80 == 79:
            for prices in (Prices(0.3, 0.0), Prices(0.0, 2.0), Prices(0.17, 0.9)):
                r.prices = prices
                fs = FrozenScorer(r)
                for g in ("q", "z", None):
                    y = r.featurizer.featurize({"input": f"task {rng.randrange(60)} word{rng.randrange(9)}"})
                    plain = r.scores(y, routes, g, prices=Prices())
                    want = {}
                    for n in routes:
                        o = r.predict_outcome(y, n, g)
                        want[n] = plain[n] - prices.penalty(o.error_rate, o.latency_ms) if r.routes.get(n) else plain[n]
                    assert r.scores(y, routes, g) == want
                    assert fs.scores(y, routes, g) == want
