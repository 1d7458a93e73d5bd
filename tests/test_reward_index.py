"""The router-wide weight table: kept current while learning, equal to one rebuilt from the tables,
and a frozen copy scores exactly as the router did when it was copied."""

from __future__ import annotations

import random

from memabrad.learning.frozen import FrozenScorer
from memabrad.learning.router import Router

ROUTES = ["direct", "llm.big", "llm.small", "memory.episodic", "tool.search"]
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
         "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi"]


def _tasks(rng: random.Random, n: int) -> list[dict[str, str]]:
    return [{"input": " ".join(rng.choices(WORDS, k=rng.randint(1, 9))), "task_type": rng.choice("abc")}
            for _ in range(n)]


def _train(router: Router, rng: random.Random, n: int) -> None:
    for task in _tasks(rng, n):
        x = router.featurizer.featurize(task)
        router.scores(x, ROUTES, task["task_type"])  # keep the live index in use while learning
        route = rng.choice(ROUTES[: rng.randint(1, len(ROUTES))])  # routes arrive one by one
        router.learn(x, route, propensity=0.5, reward=rng.random(), error=rng.random() < 0.1,
                     latency_ms=rng.uniform(100, 900), group=task["task_type"])


def test_live_index_equals_rebuilt_and_frozen_copy() -> None:
    rng = random.Random(3)
    live = Router()
    _train(live, rng, 600)
    rebuilt = Router.from_state(live.export_state())
    frozen = FrozenScorer(live)
    for task in _tasks(random.Random(4), 300):
        x = live.featurizer.featurize(task)
        g = task["task_type"]
        want = live.scores(x, ROUTES + ["never.seen"], g)
        assert rebuilt.scores(x, ROUTES + ["never.seen"], g) == want
        assert frozen.scores(x, ROUTES + ["never.seen"], g) == want
        for route in ROUTES:
            assert rebuilt.predict_outcome(x, route, g) == live.predict_outcome(x, route, g)


def test_index_prediction_matches_the_routes_own_table() -> None:
    rng = random.Random(5)
    r = Router()
    _train(r, rng, 400)
    for task in _tasks(random.Random(6), 100):
        x = r.featurizer.featurize(task)
        for route in ROUTES:
            got = r.predict_outcome(x, route, task["task_type"])
            own = r.routes[route].predict(x, task["task_type"], r.shared)
            assert abs(got.reward - own[0]) < 1e-9 and abs(got.error_rate - own[1]) < 1e-9
            assert abs(got.latency_ms - max(0.0, own[2] * 1000.0)) < 1e-6


def test_frozen_copy_does_not_follow_further_learning() -> None:
    rng = random.Random(7)
    r = Router()
    _train(r, rng, 200)
    x = r.featurizer.featurize({"input": "alpha beta", "task_type": "a"})
    frozen = FrozenScorer(r)
    before = frozen.scores(x, ROUTES, "a")
    assert before == r.scores(x, ROUTES, "a")
    _train(r, rng, 200)
    assert frozen.scores(x, ROUTES, "a") == before
    assert r.clone().scores(x, ROUTES, "a") == r.scores(x, ROUTES, "a")


def test_batch_predictions_equal_one_task_at_a_time() -> None:
    """The evaluation's batch path (one sparse product over the table) gives each task the predictions and
    ranking scores the live router gives it, features no route learned included."""
    from memabrad.learning.batch import feature_matrix, predict_all

    rng = random.Random(9)
    r = Router()
    _train(r, rng, 500)
    tasks = _tasks(random.Random(10), 200) + [{"input": "unheard words only", "task_type": "z"}]
    xs = [r.featurizer.featurize(t) for t in tasks]
    routes = ROUTES + ["never.seen"]
    batch = predict_all(r, feature_matrix(xs, 1 << r.hash_bits), routes, [t["task_type"] for t in tasks])
    for i, (task, x) in enumerate(zip(tasks, xs, strict=True)):
        g = task["task_type"]
        scores = r.scores(x, routes, g)
        for j, route in enumerate(routes):
            assert abs(batch["score"][i, j] - scores[route]) < 1e-9
            if route in r.routes:
                o = r.predict_outcome(x, route, g)
                assert abs(batch["reward"][i, j] - o.reward) < 1e-9
                assert abs(batch["error_rate"][i, j] - o.error_rate) < 1e-9
                assert abs(batch["latency_ms"][i, j] - o.latency_ms) < 1e-6
