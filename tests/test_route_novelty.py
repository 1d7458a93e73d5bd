"""An event is evidence of how a route does on tasks it has not learned while *that route* has not learned
its task, whoever else has: on traffic whose tasks recur (a catalogue, a classification dataset, templated
requests), a route tried rarely keeps meeting tasks new to it long after every task has been seen once,
and its stacking weights keep following its model instead of staying what its first pass said."""

from __future__ import annotations

import json
import random

from memabrad.config import load_config
from memabrad.learning.learner import RouterLearner
from memabrad.learning.window import is_holdout
from memabrad.wire.parse import parse_trajectory

ROUTES = ["main", "rare-a", "rare-b"]


def _row(i: int, task: int, route: str) -> str:
    p = 0.8 if route == "main" else 0.1
    return json.dumps({
        "schema_version": 1, "trajectory_id": f"t{i:06d}", "router_id": "r", "occurred_at": "2026-01-01T00:00:00Z",
        "task": {"input": f"item {task}", "features": {"size": float(task % 7 + 1)}},
        "candidates": ROUTES, "decision": {"route": route, "propensity": p},
        "outcome": {"reward": float((task + ROUTES.index(route)) % 3 == 0), "error": False, "latency_ms": 10.0},
    })


def test_a_route_counts_the_tasks_it_has_not_learned_as_novel_however_often_others_saw_them() -> None:
    rng = random.Random(5)
    cfg = load_config(None, {})
    learner = RouterLearner.new("r", cfg)
    learned: dict[str, set[int]] = {r: set() for r in ROUTES}
    novel: dict[str, int] = dict.fromkeys(ROUTES, 0)
    for i in range(3000):  # a pool of 60 tasks, each seen ~50 times
        task = rng.randrange(60)
        route = "main" if rng.random() < 0.8 else rng.choice(ROUTES[1:])
        t = parse_trajectory(_row(i, task, route))
        if not is_holdout(t.trajectory_id, learner.holdout_fraction):
            novel[route] += task not in learned[route]
            learned[route].add(task)
        learner.observe(t)
    got = {r: learner.challenger.routes[r].novel_n for r in ROUTES}
    assert got == {r: n - 1 for r, n in novel.items()}  # a route's first outcome is no stacking evidence
    assert novel["main"] == 60 and all(novel[r] > 50 for r in ROUTES[1:])  # a rare route: most of its own first
    assert sum(novel.values()) > 2 * 60  # each route's first meeting with a task, not the first meeting of any
