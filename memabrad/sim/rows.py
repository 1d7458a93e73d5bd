"""The trajectory v1 dict every workload generator emits, and its timestamps (one shape, one place)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock:
    """RFC 3339 UTC timestamps with millisecond resolution from a start time, formatting each second once.

    >>> Clock(datetime(2026, 1, 1, tzinfo=UTC)).format(1_500)
    '2026-01-01T00:00:01.500Z'
    """

    def __init__(self, start: datetime) -> None:
        self.start_ms = (start - _EPOCH) // timedelta(milliseconds=1)
        self._sec = -1
        self._prefix = ""

    def format(self, offset_ms: int) -> str:
        sec, ms = divmod(self.start_ms + offset_ms, 1000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._prefix}.{ms:03d}Z"


def trajectory_row(trajectory_id: str, router_id: str, occurred_at: str, task: dict[str, Any],
                   candidates: list[str], route: str, propensity: float, reward: float, error: bool,
                   latency_ms: float) -> dict[str, Any]:
    """A contract-valid trajectory event logged by a workload's logging policy.

    >>> trajectory_row("t-1", "default", "2026-01-01T00:00:00.000Z", {"input": "hi"}, ["a", "b"], "a", 0.5,
    ...                0.1234567, False, 12.34567)["outcome"]
    {'reward': 0.123457, 'error': False, 'latency_ms': 12.346}
    """
    return {
        "schema_version": 1,
        "trajectory_id": trajectory_id,
        "router_id": router_id,
        "occurred_at": occurred_at,
        "task": task,
        "candidates": candidates,
        "decision": {"route": route, "propensity": propensity, "router_version": "logging"},
        "outcome": {"reward": round(reward, 6), "error": error, "latency_ms": round(latency_ms, 3)},
        "steps": [],
    }


class RowStream:
    """A seeded workload's stream of trajectory rows: each workload says how to draw the ``next`` one; taking
    many, lazily or as a list, is the same for all of them."""

    def next(self) -> dict[str, Any]:
        raise NotImplementedError

    def iter_generate(self, n: int) -> Iterator[dict[str, Any]]:
        """The next ``n`` rows, lazily (for multi-million-event benchmarks)."""
        for _ in range(n):
            yield self.next()

    def generate(self, n: int) -> list[dict[str, Any]]:
        """The next ``n`` rows. The cyclic GC is paused meanwhile: the rows hold no cycles, and repeated full
        collections over a growing list of them would otherwise double the run time."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return [self.next() for _ in range(n)]
        finally:
            if was_enabled:
                gc.enable()
