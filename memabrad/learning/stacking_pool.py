"""The routes' stacking evidence pooled, as a prior for each route's stacking weights.

A route's stacking weights (how much its group and contextual parts are trusted, ``route_parts.stack``)
are least-squares weights solved from its own prequential sums over *novel* events (a task the
route learned before is no evidence about tasks it has not; one only other routes learned is).
Where a route has few such events the weights are noise, and the argmax over routes then compares
parts weighed 0 for one route and 1 for the next:

- under a skewed logging policy, a route tried 3% of the time has a few dozen novel events
  after thousands of trajectories;
- where the agent's tasks are a finite set seen again and again (a catalogue of items, a
  classification dataset, templated requests), a route's novel events stop once it has learned
  each task, and its weights then stay what those events said while its parts keep improving
  (a route's own novelty, not the task's: a route tried rarely keeps meeting tasks new to it long
  after the main route has met them all).

So each route's sums get, as a prior, the other routes' sums scaled down to ``PRIOR_EVENTS``
novel events' worth (empirical Bayes across routes): a route with little evidence of its own
weighs its parts as the router's routes do on average; past a few dozen novel events its own
sums dominate. On pure noise every route's sums say 0, and so does the prior.

The prior is computed when the route learns and kept with the route (``RouteModel.prior``), the
pool with the router, both in their saved state: a router restored from a checkpoint weighs its
routes exactly as the live one did.

>>> pool = StackingPool()
>>> pool.add(0, [1.0, 0.0, 4.0, 0.0, 4.0])  # a head's [g*g, g*f, f*f, g*t, f*t] for one event
>>> pool.n = 100.0
>>> p = pool.prior_for([[0.0] * 5] * 3, own_events=0.0)
>>> [round(v, 2) for v in p[0]]  # scaled to 30 of the 100 events
[0.3, 0.0, 1.2, 0.0, 1.2]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from memabrad.learning.route_parts import add5

PRIOR_EVENTS = 30.0  # the other routes' evidence counts as this many novel events of the route's own


def _zeros() -> list[list[float]]:
    return [[0.0] * 5 for _ in range(3)]


@dataclass
class StackingPool:
    """Per head, the sum over routes of the stacking sums, and the novel events behind them."""

    sums: list[list[float]] = field(default_factory=_zeros)
    n: float = 0.0

    def add(self, head: int, increments: Sequence[float]) -> None:
        add5(self.sums[head], increments)

    def prior_for(self, own: Sequence[Sequence[float]], own_events: float) -> list[list[float]]:
        """The other routes' sums (the pool minus ``own``), scaled to at most ``PRIOR_EVENTS`` novel events."""
        others = self.n - own_events
        if others <= 0.0:
            return _zeros()
        scale = PRIOR_EVENTS / max(PRIOR_EVENTS, others)
        return [[(p - o) * scale for p, o in zip(ph, oh, strict=True)] for ph, oh in zip(self.sums, own, strict=True)]

    def copy(self) -> StackingPool:
        return StackingPool([list(h) for h in self.sums], self.n)

    def to_state(self) -> dict[str, Any]:
        return {"sums": [list(h) for h in self.sums], "n": self.n}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, routes: Iterable[Any] = ()) -> StackingPool:
        """From ``to_state``; without one (a model saved before pooling), the routes' own sums added up."""
        if state is not None:
            return cls([[float(v) for v in h] for h in state["sums"]], float(state["n"]))
        pool = cls()
        for m in routes:
            for h in range(3):
                pool.add(h, m.s_stack[h])
            pool.n += m.novel_n
        return pool
