"""Seeded generator of contract-valid trajectory events (docs/contract.md §2) and benchmark suites.

Separate ``random.Random`` streams (seeded from strings, hence identical in every process)
drive contexts, logging decisions and outcomes, so changing epsilon leaves the contexts
unchanged and ``true_value_of_logging`` can replay exactly the contexts that were logged.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from memabrad.sim.policies import EpsilonGreedyLogger, fixed_policy
from memabrad.sim.rows import Clock, RowStream, trajectory_row
from memabrad.sim.world import DEFAULT_ROUTES, Context, World, default_world

SUBSET_PROBABILITY = 0.2  # share of tasks offered only 3-5 of the routes
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
MEAN_GAP_MS = 500.0


def _context_rng(seed: int) -> random.Random:
    return random.Random(f"memabrad-sim:{seed}:contexts")


class ContextStream:
    """The (task, candidates, context) sequence of a seed: what the simulator logs, in order."""

    def __init__(self, world: World, routes: Sequence[str], seed: int) -> None:
        self.world = world
        self.routes = list(routes)
        self.rng = _context_rng(seed)

    def next(self) -> tuple[dict[str, Any], list[str], Context]:
        """Draw the next task dict, its candidate list and its hidden context."""
        rng = self.rng
        text, task_type, tags, history = self.world.sample_task(rng)
        ctx = self.world.context(text, task_type, history)
        task = {
            "input": text,
            "task_type": task_type,
            "features": {"tokens": ctx.tokens, "has_code": int(ctx.has_code), "history_sessions": history},
            "tags": list(tags),
        }
        routes = self.routes
        if len(routes) > 3 and rng.random() < SUBSET_PROBABILITY:
            k = rng.randint(3, min(5, len(routes) - 1))
            keep = set(rng.sample(range(len(routes)), k))
            candidates = [r for i, r in enumerate(routes) if i in keep]
        else:
            candidates = list(routes)
        return task, candidates, ctx


class Simulator(RowStream):
    """Seeded workload: ``generate``/``iter_generate`` continue one logged stream.

    Calls are stateful (the next call continues ids, time and randomness) so a demo producer
    can emit batch after batch without duplicate ids; ``reset()`` rewinds to the start.
    Same seed and same calls give identical output in any process.
    """

    def __init__(
        self,
        seed: int = 0,
        routes: Sequence[str] = DEFAULT_ROUTES,
        router_id: str = "default",
        epsilon: float = 0.3,
        start_time: datetime | None = None,
        world: World | None = None,
    ) -> None:
        if not routes or len(set(routes)) != len(routes):
            raise ValueError("routes must be non-empty and unique")
        self.seed = seed
        self.routes = tuple(routes)
        self.router_id = router_id
        self.epsilon = epsilon
        start = start_time or DEFAULT_START
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.start_time = start.astimezone(UTC)
        self.world = world or default_world()
        self.reset()

    def reset(self) -> None:
        """Rewind to the first event of the seed's stream."""
        self._contexts = ContextStream(self.world, self.routes, self.seed)
        self._logger = self.make_logger()
        self._outcome_rng = random.Random(f"memabrad-sim:{self.seed}:outcomes")
        self._time_rng = random.Random(f"memabrad-sim:{self.seed}:time")
        self._index = 0
        self._clock_ms = 0
        self._clock = Clock(self.start_time)

    def make_logger(self) -> EpsilonGreedyLogger:
        """The logging policy: epsilon-greedy over ``fixed_policy`` with its own rng."""
        return EpsilonGreedyLogger(fixed_policy, self.epsilon, random.Random(f"memabrad-sim:{self.seed}:decisions"))

    def next(self) -> dict[str, Any]:
        task, candidates, ctx = self._contexts.next()
        route, propensity = self._logger(task, candidates)
        reward, error, latency = self.world.sample_outcome(ctx, route, self._outcome_rng)
        self._clock_ms += 1 + int(self._time_rng.expovariate(1.0 / MEAN_GAP_MS))
        i = self._index
        self._index += 1
        return trajectory_row(f"{self.router_id}-s{self.seed}-{i:08d}", self.router_id,
                              self._clock.format(self._clock_ms), task, candidates, route, propensity, reward, error,
                              latency)

    def generate_suite(self, n: int) -> list[dict[str, Any]]:
        """A static benchmark suite: ``n`` tasks with an observed outcome for every candidate.

        Independent of the logged stream (its own rng streams) and of earlier calls.
        """
        contexts = ContextStream(self.world, self.routes, self.seed)
        contexts.rng = random.Random(f"memabrad-sim:{self.seed}:suite-contexts")
        rng = random.Random(f"memabrad-sim:{self.seed}:suite-outcomes")
        suite = []
        for _ in range(n):
            task, candidates, ctx = contexts.next()
            outcomes = {}
            for route in candidates:
                reward, error, latency = self.world.sample_outcome(ctx, route, rng)
                outcomes[route] = {"reward": round(reward, 6), "error": error, "latency_ms": round(latency, 3)}
            suite.append({"task": task, "candidates": candidates, "outcomes": outcomes})
        return suite


def write_jsonl(path: str | os.PathLike[str], trajectories: Iterable[dict[str, Any]]) -> int:
    """Write one compact JSON object per line; returns the number written."""
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for t in trajectories:
            fh.write(json.dumps(t, separators=(",", ":"), ensure_ascii=False))
            fh.write("\n")
            count += 1
    return count
