"""Exact policy values under the simulator's world: the ground truth estimators are tested against.

Values average the analytic ``expected_outcome`` (no outcome sampling) over a fixed sample of
contexts drawn by the same ``ContextStream`` the simulator logs from, so the only error left is
the finite context sample, which is identical for every policy compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from memabrad.sim.generator import ContextStream, Simulator
from memabrad.sim.policies import Policy
from memabrad.sim.world import DEFAULT_ROUTES, Context, World, default_world


@dataclass(frozen=True, slots=True)
class PolicyValue:
    """Expected reward, error rate and latency of a policy (means over contexts)."""

    reward: float
    error_rate: float
    latency_ms: float


@lru_cache(maxsize=4)
def _contexts(
    world: World, routes: tuple[str, ...], seed: int, n: int
) -> tuple[tuple[dict[str, Any], list[str], Context], ...]:
    stream = ContextStream(world, routes, seed)
    return tuple(stream.next() for _ in range(n))


def true_value(
    policy: Policy,
    *,
    n_contexts: int = 20000,
    seed: int = 12345,
    world: World | None = None,
    routes: Sequence[str] = DEFAULT_ROUTES,
) -> PolicyValue:
    """Exact expected value of a deterministic policy over ``n_contexts`` sampled contexts.

    The contexts (and their candidate lists) are those ``Simulator(seed)`` would log first.
    Do not mutate the task dicts inside a policy: they are cached between calls.
    """
    w = world or default_world()
    reward = error = latency = 0.0
    contexts = _contexts(w, tuple(routes), seed, n_contexts)
    for task, candidates, ctx in contexts:
        o = w.expected_outcome(ctx, policy(task, candidates))
        reward += o.reward
        error += o.error_rate
        latency += o.latency_ms
    n = len(contexts)
    return PolicyValue(reward / n, error / n, latency / n)


def true_value_of_logging(simulator: Simulator, *, n_contexts: int = 20000, seed: int | None = None) -> PolicyValue:
    """Exact value of the simulator's epsilon-greedy logging policy, mixing by propensities.

    With ``seed=None`` the contexts are exactly the first ``n_contexts`` the simulator logs,
    so the mean observed reward of ``simulator.generate(n_contexts)`` differs from this only
    by outcome and exploration noise.
    """
    w = simulator.world
    logger = simulator.make_logger()
    contexts = _contexts(w, simulator.routes, simulator.seed if seed is None else seed, n_contexts)
    reward = error = latency = 0.0
    for task, candidates, ctx in contexts:
        for route, p in logger.probabilities(task, candidates).items():
            o = w.expected_outcome(ctx, route)
            reward += p * o.reward
            error += p * o.error_rate
            latency += p * o.latency_ms
    n = len(contexts)
    return PolicyValue(reward / n, error / n, latency / n)


def true_value_on(policy: Policy, trajectories: Iterable[Mapping[str, Any]], world: World | None = None) -> PolicyValue:
    """Exact value of ``policy`` on the very contexts of some logged trajectories.

    For off-policy estimator tests: the estimate from those logs should approach this.
    """
    w = world or default_world()
    reward = error = latency = 0.0
    n = 0
    for t in trajectories:
        task = t["task"]
        o = w.expected_outcome(w.context_of_task(task), policy(task, list(t["candidates"])))
        reward += o.reward
        error += o.error_rate
        latency += o.latency_ms
        n += 1
    if n == 0:
        raise ValueError("no trajectories")
    return PolicyValue(reward / n, error / n, latency / n)
