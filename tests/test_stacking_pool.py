"""Each route's stacking weights start from the router's pooled evidence (``learning/stacking_pool.py``)."""

from __future__ import annotations

import random

from memabrad.learning.features import Featurizer
from memabrad.learning.route_parts import stack
from memabrad.learning.router import Router

ROUTES = ["a", "b", "c", "d"]


def _task(rng: random.Random) -> tuple[dict, int]:
    k = rng.randrange(len(ROUTES))  # the right route for this task, readable from its numbers
    feats = {f"x{j}": (8.0 if j == k else 1.0) * rng.uniform(0.9, 1.1) for j in range(len(ROUTES))}
    return {"input": "route this request", "features": feats}, k


def _train(n: int, signal: bool, seed: int = 5, distinct: int | None = None) -> Router:
    """70% of traffic to ``a``, the rest uniform: ``d`` gets about 7.5% of the events. ``distinct``: the tasks
    are drawn from a fixed set of that many (after the first pass, every task is one seen before)."""
    r, rng, f = Router(), random.Random(seed), Featurizer()
    fixed = [_task(rng) for _ in range(distinct)] if distinct else None
    seen: set[str] = set()
    for _ in range(n):
        task, k = rng.choice(fixed) if fixed else _task(rng)
        key = repr(sorted(task["features"].items()))
        probs = [0.775 if c == "a" else 0.075 for c in ROUTES]
        i = rng.choices(range(len(ROUTES)), weights=probs)[0]
        reward = (1.0 if i == k else 0.0) if signal else float(rng.random() < 0.3)
        r.learn(f.featurize(task), ROUTES[i], propensity=probs[i], reward=reward, error=False, latency_ms=10.0,
                novel=key not in seen)
        seen.add(key)
    return r


def test_a_route_with_few_novel_events_weighs_its_part_as_the_router_does_and_chooses_right() -> None:
    """A fixed set of 60 tasks, seen again and again: novel events end with the first pass, which gave the
    rarely tried routes a handful each. Their weights come from the router's pooled evidence."""
    r = _train(3000, signal=True, distinct=60)
    for name in ("b", "c", "d"):
        m = r.routes[name]
        assert m.novel_n < 12
        assert m.lambdas()[0][1] > 0.5
    rng, right = random.Random(99), 0
    for _ in range(200):
        task, k = _task(rng)
        x, group = r.task_features(task)
        right += r.best(x, ROUTES, group) == ROUTES[k]
    assert right >= 150  # chance: 50


def test_on_noise_the_prior_says_noise_too() -> None:
    r = _train(2000, signal=False)
    assert all(m.lambdas()[0][1] < 0.35 for m in r.routes.values())


def test_the_pool_is_every_routes_sums_and_survives_a_round_trip() -> None:
    r = _train(300, signal=True)
    for h in range(3):
        for i in range(5):
            total = sum(m.s_stack[h][i] for m in r.routes.values())
            assert abs(r.pool.sums[h][i] - total) < 1e-9 * max(1.0, abs(total))
    assert r.pool.n == sum(m.novel_n for m in r.routes.values())
    back = Router.from_state(r.export_state())
    assert back.pool.to_state() == r.pool.to_state()
    assert {k: m.lambdas() for k, m in back.routes.items()} == {k: m.lambdas() for k, m in r.routes.items()}


def test_a_model_saved_before_pooling_gets_a_pool_of_its_routes_sums_and_keeps_its_weights() -> None:
    r = _train(300, signal=True)
    state = r.export_state()
    del state["stacking_pool"]
    for s in state["routes"].values():
        s.pop("prior", None)
        s.pop("novel_n", None)
    old = Router.from_state(state)
    assert all(m.prior is None and m.lambdas()[1:] == [stack(s) for s in m.s_stack[1:]] for m in old.routes.values())
    assert old.pool.n == sum(m.n for m in old.routes.values())
