"""Workloads whose best route depends on numbers in ``task.features``, not on the words.

Agents often know things about a task that are numbers: its size in tokens, whether it holds
code, how many turns the conversation has had, an estimated cost in USD, a latency budget, the
user's tier. Routing on them means learning a *shape* — a cheap model is good up to some size
and poor above; a tool pays off only above some cost — on whatever scale the agent reports.
The texts here are a few random words with no signal, so only the numbers can be learned.

Four worlds, each with an exact expected reward per (context, route), so a policy's true value
is exact over a fixed set of contexts:

- ``TOKENS``: 8 routes, a random 4-8 of them offered per task (``large`` always), Bernoulli
  rewards; features ``prompt_tokens`` (20-5,000, log-uniform), ``has_code``, ``turns``;
  logging 70 % ``large`` + 30 % uniform over the offered routes.
- ``PRICED``: 6 routes, all offered; rewards in [-1, 1] (an expected value plus uniform noise of
  +-0.3, never clipped); features on small and large scales: ``est_cost_usd`` (1e-4 to 0.05),
  ``user_tier``, ``latency_budget_ms`` (100-10,000), ``n_docs``; logging 60 % ``standard`` +
  40 % uniform. It was written after the featurizer's numeric knots and never tuned on.
- ``GUARDED``: 5 routes whose best reward costs latency and errors, so a router that ranks by
  reward alone breaks the promotion guardrails: ``agentic`` is the most rewarding for hard tasks
  and takes 3.5 s with 6 % errors (10 % in interactive sessions), ``fast`` takes 0.25 s. Features
  ``difficulty`` (0-1), ``n_docs``, ``interactive``; a failed task earns 0, otherwise the
  quality +- 0.3; observed latency is the route's mean x U(0.5, 1.5); logging 60 % ``standard`` +
  40 % uniform. Written to judge guardrail prices and never tuned on.
- ``TOKENS_BROKEN``: ``TOKENS`` after its code tool broke (0.10 everywhere), for a stream whose
  world changes mid-way.

>>> w = NumericWorkload(TOKENS, seed=1)
>>> row = w.generate(1)[0]
>>> sorted(row["task"]["features"]), "large" in row["candidates"]
(['has_code', 'prompt_tokens', 'turns'], True)
>>> round(TOKENS.expected(row["task"], "large"), 2)
0.7
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from memabrad.sim.rows import Clock, RowStream, trajectory_row

Task = dict[str, Any]


@dataclass(frozen=True)
class NumericWorld:
    """Routes, a task sampler, the offered candidates, the logging agent and the exact expected reward."""

    name: str
    routes: tuple[str, ...]
    logging_route: str
    logging_share: float  # the rest is uniform over the offered candidates
    sample_task: Callable[[random.Random], Task]
    offer: Callable[[random.Random], list[str]]
    expected: Callable[[Mapping[str, Any], str], float]
    draw_reward: Callable[[random.Random, float], float]
    # (mean latency in ms, error probability) of a route for a task; None: 500 ms, never an error
    outcome: Callable[[Mapping[str, Any], str], tuple[float, float]] | None = None

    def logging_probs(self, candidates: Sequence[str]) -> dict[str, float]:
        explore = (1.0 - self.logging_share) / len(candidates)
        return {r: explore + (self.logging_share if r == self.logging_route else 0.0) for r in candidates}


def _words(rng: random.Random, vocab: Sequence[str], lo: int, hi: int) -> str:
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(lo, hi)))


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


# -- TOKENS --------------------------------------------------------------------------------------

_TOKENS_ROUTES = ("small", "large", "code-tool", "memory", "clarify", "f1", "f2", "f3")
_TOKENS_VOCAB = (
    "please", "help", "me", "with", "this", "thing", "about", "the", "system", "and", "my", "account", "data",
    "report", "request", "file", "update", "check",
)


def _tokens_task(rng: random.Random) -> Task:
    return {"input": _words(rng, _TOKENS_VOCAB, 3, 12),
            "features": {"prompt_tokens": round(_log_uniform(rng, 20, 5000)),
                         "has_code": int(rng.random() < 0.25), "turns": rng.randint(1, 10)}}


def _tokens_offer(rng: random.Random) -> list[str]:
    others = [r for r in _TOKENS_ROUTES if r != "large"]
    return ["large", *rng.sample(others, rng.randint(4, 8) - 1)]


def _tokens_expected(task: Mapping[str, Any], route: str) -> float:
    f = task["features"]
    if route == "small":
        return 0.85 if f["prompt_tokens"] < 300 else 0.40
    if route == "code-tool":
        return 0.92 if f["has_code"] else 0.30
    if route == "memory":
        return min(0.95, 0.35 + 0.06 * f["turns"])
    return {"large": 0.70, "clarify": 0.50, "f1": 0.45, "f2": 0.55, "f3": 0.40}[route]


TOKENS = NumericWorld(
    name="tokens", routes=_TOKENS_ROUTES, logging_route="large", logging_share=0.7,
    sample_task=_tokens_task, offer=_tokens_offer, expected=_tokens_expected,
    draw_reward=lambda rng, p: 1.0 if rng.random() < p else 0.0,
)

# -- PRICED --------------------------------------------------------------------------------------

_PRICED_ROUTES = ("standard", "fast", "premium", "cheap", "retrieval", "agentic")
_PRICED_VOCAB = (
    "summarise", "translate", "draft", "fix", "explain", "compare", "list", "find", "write", "plan", "the",
    "a", "of", "for", "my", "our", "new", "old", "email", "code", "doc", "page", "table", "query", "note",
)


def _priced_task(rng: random.Random) -> Task:
    return {"input": _words(rng, _PRICED_VOCAB, 2, 8),
            "features": {"est_cost_usd": round(_log_uniform(rng, 1e-4, 0.05), 6),
                         "user_tier": rng.choice((1, 1, 1, 2, 2, 3)),
                         "latency_budget_ms": round(_log_uniform(rng, 100, 10_000)),
                         "n_docs": rng.choice((0, 0, 0, 1, 2, 4, 8))}}


def _priced_expected(task: Mapping[str, Any], route: str) -> float:
    f = task["features"]
    if route == "fast":
        return 0.45 if f["latency_budget_ms"] < 800 else -0.10
    if route == "premium":
        return 0.55 if f["user_tier"] >= 3 else -0.05
    if route == "cheap":
        return 0.40 if f["est_cost_usd"] > 0.01 else 0.05
    if route == "retrieval":
        return 0.1 + 0.12 * min(f["n_docs"], 5)
    if route == "agentic":
        return 0.35 if f["latency_budget_ms"] >= 3000 else -0.20
    return 0.20  # standard


PRICED = NumericWorld(
    name="priced", routes=_PRICED_ROUTES, logging_route="standard", logging_share=0.6,
    sample_task=_priced_task, offer=lambda _rng: list(_PRICED_ROUTES), expected=_priced_expected,
    draw_reward=lambda rng, mean: mean + rng.uniform(-0.3, 0.3),  # in [-0.5, 1.0]: never clipped
)

# -- GUARDED -------------------------------------------------------------------------------------

_GUARDED_ROUTES = ("standard", "fast", "deep", "agentic", "retrieval")
_GUARDED_OUTCOME = {"standard": (700.0, 0.02), "fast": (250.0, 0.01), "deep": (1800.0, 0.03),
                    "agentic": (3500.0, 0.06), "retrieval": (1100.0, 0.02)}


def _guarded_task(rng: random.Random) -> Task:
    return {"input": _words(rng, _PRICED_VOCAB, 2, 8),
            "features": {"difficulty": round(rng.random(), 2), "n_docs": rng.choice((0, 0, 0, 1, 3, 6)),
                         "interactive": int(rng.random() < 0.3)}}


def _guarded_outcome(task: Mapping[str, Any], route: str) -> tuple[float, float]:
    latency, error = _GUARDED_OUTCOME[route]
    if route == "agentic" and task["features"]["interactive"]:
        error = 0.10
    return latency, error


def _guarded_quality(task: Mapping[str, Any], route: str) -> float:
    """The expected reward of a task that did not fail."""
    f = task["features"]
    d = f["difficulty"]
    return {"standard": 0.45 - 0.10 * d, "fast": 0.55 - 0.50 * d, "deep": 0.35 + 0.35 * d,
            "agentic": 0.30 + 0.55 * d, "retrieval": 0.25 + 0.08 * min(f["n_docs"], 5)}[route]


GUARDED = NumericWorld(
    name="guarded", routes=_GUARDED_ROUTES, logging_route="standard", logging_share=0.6,
    sample_task=_guarded_task, offer=lambda _rng: list(_GUARDED_ROUTES),
    expected=lambda task, route: (1.0 - _guarded_outcome(task, route)[1]) * _guarded_quality(task, route),
    draw_reward=lambda rng, mean: mean + rng.uniform(-0.3, 0.3),
    outcome=_guarded_outcome,
)

# -- TOKENS_BROKEN ------------------------------------------------------------------------------


def _broken_expected(task: Mapping[str, Any], route: str) -> float:
    return 0.10 if route == "code-tool" else _tokens_expected(task, route)


# ``TOKENS`` after its code tool broke (0.10 for every task): the quality benchmark's ``drift`` workload
# switches to it mid-stream, as an agent's traffic does when a tool's API changes
TOKENS_BROKEN = NumericWorld(
    name="tokens_broken", routes=_TOKENS_ROUTES, logging_route="large", logging_share=0.7,
    sample_task=_tokens_task, offer=_tokens_offer, expected=_broken_expected,
    draw_reward=lambda rng, p: 1.0 if rng.random() < p else 0.0,
)

WORLDS = {w.name: w for w in (TOKENS, PRICED, GUARDED, TOKENS_BROKEN)}
_START = datetime(2026, 1, 1, tzinfo=UTC)


class NumericWorkload(RowStream):
    """A seeded stream of logged trajectories from a ``NumericWorld``, with exact propensities."""

    def __init__(self, world: NumericWorld, seed: int = 0, router_id: str | None = None) -> None:
        self.world = world
        self.router_id = router_id or world.name
        self.seed = seed
        self._rng = random.Random(seed)
        self._clock = Clock(_START)
        self._i = 0

    def contexts(self, n: int, seed: int = 12345) -> list[tuple[Task, list[str]]]:
        """``n`` fixed (task, candidates) pairs to value policies on (their own seed, not the stream's)."""
        rng = random.Random(seed)
        return [(self.world.sample_task(rng), self.world.offer(rng)) for _ in range(n)]

    def next(self) -> dict[str, Any]:
        w, rng = self.world, self._rng
        task, candidates = w.sample_task(rng), w.offer(rng)
        probs = w.logging_probs(candidates)
        route = rng.choices(candidates, weights=[probs[c] for c in candidates])[0]
        mean = w.expected(task, route)
        latency, error = 500.0, False
        if w.outcome is not None:  # a failed task earns 0; ``expected`` is (1 - error) x the quality
            mean_ms, p_error = w.outcome(task, route)
            latency, error = mean_ms * rng.uniform(0.5, 1.5), rng.random() < p_error
            mean /= 1.0 - p_error
        reward = 0.0 if error else w.draw_reward(rng, mean)
        row = trajectory_row(f"{self.router_id}-n{self.seed}-{self._i:08d}", self.router_id,
                             self._clock.format(500 * self._i), task, candidates, route, probs[route], reward,
                             error, latency)
        self._i += 1
        return row

