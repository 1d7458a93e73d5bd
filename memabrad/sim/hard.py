"""A hard routing workload: twelve priced LLMs, cost-aware reward, long shared prompts.

What makes it hard for a learned router, on purpose:

- **Twelve routes**, each an LLM with a per-call USD price (``PRICE_USD``); the reward is
  ``correct - LAMBDA * price`` with ``LAMBDA = 5`` reward units per USD (a fully correct answer
  is worth $0.20 of spend), so the most accurate model is rarely the best route.
- **Long inputs that look alike**: every task of a family opens with the same few-shot prompt
  (a preamble shared by all families, the family's instructions and worked examples: 290-370
  words, byte-identical across the family's tasks) and ends with a short task-specific part
  (15-35 words). Bag-of-words features and near-duplicate search see mostly the opening.
- **Five families**, two of them near chance for every model (``forecast``: binary questions
  about the future, ~0.5; ``puzzle``: four-option trick riddles, ~0.25-0.3), where the only
  thing worth learning is "do not pay for a big model".
- **A task-level signal**: ``code`` and ``math`` tasks are ``easy`` or ``hard``, told by the
  wording of the short end only (scope of the bug, kind of problem); the best route differs
  by level (a code specialist for code, a reasoning model for easy math, the largest models
  for hard math).
- **A skewed logging policy**: 70% to one mid-price route (``llm/mid``), 30% uniform over all
  twelve, with exact propensities (0.725 for ``llm/mid``, 0.025 for each other route).

Ground truth is exact: ``ACCURACY[(family, level)]`` is each route's probability of a correct
answer and ``expected_reward`` follows from it and the price, so every policy's true value on
a fixed sample of contexts is an exact average (``HardWorkload.true_value``), and a policy
keyed by (family, level) has an exact population value (``population_value``).

This module holds the routes, the truth and the logged stream; the tasks themselves (families,
mix, prompts, reading a task's context back from its text) are in ``hard_tasks.py`` and
re-exported here.

>>> w = HardWorkload(seed=1)
>>> rows = w.generate(2)
>>> [r["trajectory_id"] for r in rows]
['hard-k1-00000000', 'hard-k1-00000001']
>>> len(ROUTES), len(FAMILIES)
(12, 5)
>>> round(sum(w.logging_probabilities(list(ROUTES)).values()), 12)
1.0
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from memabrad.sim.hard_tasks import (
    CODE_SCOPES,
    DELIMITER,
    FAMILIES,
    INSTRUCTIONS,
    MATH_TEMPLATES,
    MIX,
    PREAMBLE,
    HardContext,
    context_of_task,
    opening,
    sample_task,
)
from memabrad.sim.rows import Clock, RowStream, trajectory_row

__all__ = [
    "ACCURACY",
    "CODE_SCOPES",
    "DELIMITER",
    "ERROR_RATE",
    "EXPLORE",
    "FAMILIES",
    "HardContext",
    "HardValue",
    "HardWorkload",
    "INSTRUCTIONS",
    "LAMBDA",
    "LATENCY_MS",
    "LOGGING_ROUTE",
    "MATH_TEMPLATES",
    "MIX",
    "PREAMBLE",
    "PRICE_USD",
    "Policy",
    "ROUTES",
    "context_of_task",
    "expected_reward",
    "opening",
    "sample_task",
]

LAMBDA = 5.0  # reward units per USD: reward = correct - LAMBDA * price
LOGGING_ROUTE = "llm/mid"
EXPLORE = 0.3

ROUTES: tuple[str, ...] = (
    "llm/nano", "llm/micro", "llm/mini", "llm/small", "llm/base", "llm/mid",
    "llm/coder", "llm/reasoner", "llm/large", "llm/xl", "llm/ultra", "llm/max",
)
PRICE_USD: dict[str, float] = {
    "llm/nano": 0.0002, "llm/micro": 0.0004, "llm/mini": 0.0008, "llm/small": 0.0015,
    "llm/base": 0.003, "llm/mid": 0.006, "llm/coder": 0.008, "llm/reasoner": 0.02,
    "llm/large": 0.03, "llm/xl": 0.05, "llm/ultra": 0.08, "llm/max": 0.12,
}
LATENCY_MS: dict[str, float] = {
    "llm/nano": 350.0, "llm/micro": 400.0, "llm/mini": 450.0, "llm/small": 550.0,
    "llm/base": 700.0, "llm/mid": 900.0, "llm/coder": 1000.0, "llm/reasoner": 2600.0,
    "llm/large": 1500.0, "llm/xl": 1900.0, "llm/ultra": 2400.0, "llm/max": 3000.0,
}
ERROR_RATE: dict[str, float] = {r: 0.02 if i < 4 else 0.01 for i, r in enumerate(ROUTES)}

# Probability of a correct answer (errors included: an errored call is not correct), in ROUTES order.
ACCURACY: dict[tuple[str, str], tuple[float, ...]] = {
    #                 nano  micro mini  small base  mid   coder reas  large xl    ultra max
    ("extract", "-"): (0.80, 0.84, 0.88, 0.90, 0.92, 0.93, 0.90, 0.93, 0.94, 0.95, 0.95, 0.96),
    ("code", "easy"): (0.35, 0.42, 0.50, 0.58, 0.66, 0.72, 0.88, 0.80, 0.84, 0.87, 0.89, 0.90),
    ("code", "hard"): (0.05, 0.08, 0.12, 0.18, 0.26, 0.34, 0.55, 0.62, 0.66, 0.84, 0.86, 0.88),
    ("math", "easy"): (0.30, 0.36, 0.45, 0.52, 0.60, 0.66, 0.62, 0.90, 0.82, 0.86, 0.88, 0.90),
    ("math", "hard"): (0.02, 0.03, 0.05, 0.08, 0.12, 0.18, 0.15, 0.52, 0.40, 0.55, 0.86, 0.90),
    ("forecast", "-"): (0.50, 0.50, 0.50, 0.51, 0.51, 0.51, 0.50, 0.52, 0.52, 0.52, 0.53, 0.53),
    ("puzzle", "-"): (0.25, 0.25, 0.26, 0.26, 0.27, 0.27, 0.26, 0.30, 0.28, 0.29, 0.30, 0.31),
}


def expected_reward(family: str, level: str, route: str, lam: float = LAMBDA) -> float:
    """Exact expected reward of ``route`` on a task of (family, level)."""
    return ACCURACY[(family, level)][ROUTES.index(route)] - lam * PRICE_USD[route]


class HardValue(NamedTuple):
    """Exact means over contexts: reward, accuracy, USD per call, latency and error rate."""

    reward: float
    accuracy: float
    cost_usd: float
    latency_ms: float
    error_rate: float


# -- the workload -------------------------------------------------------------------------------

Policy = Callable[[Mapping[str, Any], Sequence[str]], str]
_START = datetime(2026, 1, 1, tzinfo=UTC)


class HardWorkload(RowStream):
    """Seeded stream of hard-workload trajectories (trajectory v1 dicts).

    Separate random streams drive contexts, logging decisions and outcomes, so the contexts
    of a seed do not depend on the logging policy and ``contexts(n)`` replays those logged.
    """

    def __init__(self, seed: int = 0, router_id: str = "hard", explore: float = EXPLORE,
                 logging_route: str = LOGGING_ROUTE, lam: float = LAMBDA) -> None:
        if logging_route not in ROUTES:
            raise ValueError(f"unknown logging route {logging_route!r}")
        if not 0.0 <= explore <= 1.0:
            raise ValueError("explore must be within [0, 1]")
        self.seed = seed
        self.router_id = router_id
        self.explore = explore
        self.logging_route = logging_route
        self.lam = lam
        self.routes = ROUTES
        self._contexts: dict[tuple[int, int], list[tuple[dict[str, Any], list[str], HardContext]]] = {}
        self.reset()

    def reset(self) -> None:
        self._ctx_rng = random.Random(f"memabrad-hard:{self.seed}:contexts")
        self._dec_rng = random.Random(f"memabrad-hard:{self.seed}:decisions")
        self._out_rng = random.Random(f"memabrad-hard:{self.seed}:outcomes")
        self._index = 0
        self._clock = Clock(_START)

    # -- truth ---------------------------------------------------------------------------
    def expected_reward(self, ctx: HardContext, route: str) -> float:
        return expected_reward(ctx.family, ctx.level, route, self.lam)

    def logging_probabilities(self, candidates: Sequence[str]) -> dict[str, float]:
        """The logging policy's exact distribution over ``candidates`` (sums to 1)."""
        share = self.explore / len(candidates)
        base = self.logging_route if self.logging_route in candidates else candidates[0]
        return {r: share + (1.0 - self.explore if r == base else 0.0) for r in candidates}

    def contexts(self, n: int, seed: int | None = None) -> list[tuple[dict[str, Any], list[str], HardContext]]:
        """The first ``n`` (task, candidates, context) of a seed's stream (this workload's seed if None).

        Cached per (n, seed): do not mutate the returned tasks.
        """
        key = (n, self.seed if seed is None else seed)
        out = self._contexts.get(key)
        if out is None:
            rng = random.Random(f"memabrad-hard:{key[1]}:contexts")
            out = []
            for _ in range(n):
                task, ctx = sample_task(rng)
                out.append((task, list(ROUTES), ctx))
            self._contexts = {key: out}  # keep one sample: they are large
        return out

    def _value(self, dist: Callable[[dict[str, Any], list[str]], Mapping[str, float]],
               contexts: Sequence[tuple[dict[str, Any], list[str], HardContext]]) -> HardValue:
        acc = [0.0] * 5
        for task, cands, ctx in contexts:
            row = ACCURACY[ctx]
            for route, p in dist(task, cands).items():
                a = row[ROUTES.index(route)]
                acc[0] += p * (a - self.lam * PRICE_USD[route])
                acc[1] += p * a
                acc[2] += p * PRICE_USD[route]
                acc[3] += p * LATENCY_MS[route]
                acc[4] += p * ERROR_RATE[route]
        n = len(contexts)
        return HardValue(*(v / n for v in acc))

    def true_value(self, policy: Policy, n_contexts: int = 5000, seed: int = 12345) -> HardValue:
        """Exact expected value of a deterministic policy, averaged over ``n_contexts`` sampled contexts."""
        return self._value(lambda t, c: {policy(t, c): 1.0}, self.contexts(n_contexts, seed))

    def true_value_of_logging(self, n_contexts: int = 5000, seed: int | None = None) -> HardValue:
        """Exact value of the logging policy on the same kind of context sample."""
        return self._value(lambda _t, c: self.logging_probabilities(c), self.contexts(n_contexts, seed))

    def population_value(self, choice: Mapping[tuple[str, str], str]) -> float:
        """Exact value under the task mix of a policy that picks ``choice[(family, level)]``."""
        return sum(w * self.expected_reward(HardContext(*k), choice[k]) for k, w in MIX.items())

    def oracle_choice(self) -> dict[tuple[str, str], str]:
        """The best route per (family, level)."""
        return {k: self._best_route(HardContext(*k)) for k in MIX}

    def _best_route(self, ctx: HardContext) -> str:
        return max(ROUTES, key=lambda r: self.expected_reward(ctx, r))

    def oracle_policy(self) -> Policy:
        """The per-(family, level) best route, read from the task text."""
        choice = self.oracle_choice()

        def oracle(task: Mapping[str, Any], candidates: Sequence[str]) -> str:
            ctx = context_of_task(task)
            best = choice[ctx]
            if best in candidates:
                return best
            return max(candidates, key=lambda r: self.expected_reward(ctx, r))

        return oracle

    def best_single_route(self) -> str:
        """The route with the highest population value when used for every task."""
        return max(ROUTES, key=lambda r: self.population_value({k: r for k in MIX}))

    # -- the log -------------------------------------------------------------------------
    def next(self) -> dict[str, Any]:
        task, ctx = sample_task(self._ctx_rng)
        candidates = list(ROUTES)
        base = self.logging_route
        route = self._dec_rng.choice(candidates) if self._dec_rng.random() < self.explore else base
        propensity = self.logging_probabilities(candidates)[route]
        rng = self._out_rng
        e = ERROR_RATE[route]
        error = rng.random() < e
        correct = (not error) and rng.random() < ACCURACY[ctx][ROUTES.index(route)] / (1.0 - e)
        reward = (1.0 if correct else 0.0) - self.lam * PRICE_USD[route]
        latency = LATENCY_MS[route] * (0.6 + 0.8 * rng.random())
        i = self._index
        self._index += 1
        return trajectory_row(f"{self.router_id}-k{self.seed}-{i:08d}", self.router_id, self._clock.format(250 * i),
                              task, candidates, route, propensity, reward, error, latency)

