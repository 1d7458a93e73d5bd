"""Reference policies: the mediocre incumbent, the oracle, a type-only rule, and the logger.

A policy is any callable ``(task: dict, candidates: list[str]) -> str``; it must return one of
``candidates``. These give tests and benchmarks fixed points whose true values are known.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from memabrad.sim.world import DEFAULT_ROUTES, TASK_TYPES, World, default_world

Policy = Callable[[Mapping[str, Any], Sequence[str]], str]

# The incumbent's rule: right for some types (coding, chitchat), wrong for others.
FIXED_PREFERENCES: dict[str, tuple[str, ...]] = {
    "qa": ("direct", "memory.semantic"),
    "coding": ("tool.code", "direct"),
    "chitchat": ("direct",),
    "research": ("memory.semantic", "direct"),
    "recall": ("memory.semantic", "direct"),
    "ambiguous": ("direct",),
}


def _first_available(preferences: Sequence[str], candidates: Sequence[str]) -> str:
    for route in preferences:
        if route in candidates:
            return route
    return "direct" if "direct" in candidates else candidates[0]


def fixed_policy(task: Mapping[str, Any], candidates: Sequence[str]) -> str:
    """A mediocre rule by task type (the logging router's base choice).

    >>> fixed_policy({"input": "hi", "task_type": "research"}, ["direct", "tool.web_search"])
    'direct'
    """
    return _first_available(FIXED_PREFERENCES.get(task.get("task_type") or "", ()), candidates)


def oracle_policy(world: World | None = None) -> Policy:
    """The policy that picks the candidate with the highest true expected reward."""
    w = world or default_world()

    def oracle(task: Mapping[str, Any], candidates: Sequence[str]) -> str:
        return w.best_route(w.context_of_task(task), candidates)

    return oracle


class TypeOnlyPolicy:
    """The best rule that reads the task type alone: the ceiling for type-keyed routers.

    Routes are ranked per type by true mean reward over a sample of contexts, so with a
    candidate subset the best available one is taken. ``ranking`` shows the learned order.
    """

    def __init__(self, world: World | None = None, *, n_contexts: int = 20000, seed: int = 777) -> None:
        w = world or default_world()
        rng = random.Random(f"memabrad-sim:type-only:{seed}")
        sums: dict[str, list[float]] = {t: [0.0] * len(DEFAULT_ROUTES) for t in TASK_TYPES}
        for _ in range(n_contexts):
            text, task_type, _tags, history = w.sample_task(rng)
            ctx = w.context(text, task_type, history)
            row = sums[task_type]
            for i, route in enumerate(DEFAULT_ROUTES):
                row[i] += w.expected_outcome(ctx, route).reward
        self.ranking: dict[str, tuple[str, ...]] = {
            t: tuple(r for _, r in sorted(zip(row, DEFAULT_ROUTES, strict=True), key=lambda p: -p[0]))
            for t, row in sums.items()
        }

    def __call__(self, task: Mapping[str, Any], candidates: Sequence[str]) -> str:
        return _first_available(self.ranking.get(task.get("task_type") or "", ()), candidates)


def type_only_policy(world: World | None = None, *, n_contexts: int = 20000, seed: int = 777) -> Policy:
    """A ``TypeOnlyPolicy`` for ``world`` (the default world when None)."""
    return TypeOnlyPolicy(world, n_contexts=n_contexts, seed=seed)


class EpsilonGreedyLogger:
    """Epsilon-greedy over a base policy, reporting the exact propensity of each choice.

    Exact propensities are what make the logged data usable by IPS/DR estimators.
    """

    def __init__(self, base_policy: Policy, epsilon: float, rng: random.Random) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.base_policy = base_policy
        self.epsilon = epsilon
        self.rng = rng

    def probabilities(self, task: Mapping[str, Any], candidates: Sequence[str]) -> dict[str, float]:
        """The full action distribution for a task (sums to 1)."""
        base = self.base_policy(task, candidates)
        share = self.epsilon / len(candidates)
        return {r: share + (1.0 - self.epsilon if r == base else 0.0) for r in candidates}

    def __call__(self, task: Mapping[str, Any], candidates: Sequence[str]) -> tuple[str, float]:
        """Choose a route; returns ``(route, propensity)``."""
        base = self.base_policy(task, candidates)
        route = self.rng.choice(candidates) if self.rng.random() < self.epsilon else base
        share = self.epsilon / len(candidates)
        return route, share + (1.0 - self.epsilon if route == base else 0.0)
