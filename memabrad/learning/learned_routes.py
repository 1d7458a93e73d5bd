"""Which routes have learned each task, and the reward each last learned it with.

Whether a route learned the task makes an event new evidence for its stacking weights or not: a route's
contextual part may have memorised a task it learned (a text model, a repeated prompt), so such an event
says nothing about how it does on tasks it has not learned; a task only *other* routes learned is still new
to it. Where tasks recur under a skewed logging policy, a route tried rarely keeps meeting tasks new to it
long after the main route has met them all. The reward it last learned the task with tells, when it learns
the task again, how noisy the rewards are (``outcome_noise.py``). Kept beside the case index's cases,
evicted and saved with them.

>>> learned = LearnedRoutes()
>>> learned.add("reset my password", "kb", 1.0)
>>> learned.learned("reset my password", "kb"), learned.learned("reset my password", "llm")
(True, False)
>>> learned.previous("reset my password", "kb"), learned.previous("reset my password", "llm")
(1.0, None)
>>> learned.to_state(["reset my password", "other"])
[['kb'], []]
>>> learned.rewards_state(["reset my password", "other"])
[[1.0], []]
>>> LearnedRoutes.from_state(None, ["old task"]).learned("old task", "llm")  # saved before: every route
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class LearnedRoutes:
    """Task key -> the routes that learned it, in the order they did: a tuple of strings, which the cyclic
    collector stops tracking (a set it never does); None: every route. Beside it, (task key, route) -> the
    reward that route last learned the task with (none for routes learned before rewards were kept)."""

    def __init__(self) -> None:
        self._by_key: dict[str, tuple[str, ...] | None] = {}
        self._rewards: dict[tuple[str, str], float] = {}

    def add(self, key: str, route: str, reward: float | None = None) -> None:
        routes = self._by_key.get(key, ())
        if routes is not None and route not in routes:
            self._by_key[key] = (*routes, route)
        if reward is not None and routes is not None:
            self._rewards[(key, route)] = reward

    def learned(self, key: str, route: str) -> bool:
        routes = self._by_key.get(key, ())
        return routes is None or route in routes

    def previous(self, key: str, route: str) -> float | None:
        """The reward ``route`` last learned task ``key`` with (None: it has not, or that was not kept)."""
        return self._rewards.get((key, route))

    def drop(self, key: str) -> None:
        routes = self._by_key.pop(key, None)
        for route in routes or ():
            self._rewards.pop((key, route), None)

    def to_state(self, keys: Iterable[str]) -> list[list[str] | None]:
        """Per key, in ``keys``' order, its routes sorted (None: every route)."""
        out: list[list[str] | None] = []
        for key in keys:
            routes = self._by_key.get(key, ())
            out.append(None if routes is None else sorted(routes))
        return out

    def rewards_state(self, keys: Iterable[str]) -> list[list[float | None]]:
        """Per key, in ``keys``' order, the rewards of ``to_state``'s routes in its order (None: not kept)."""
        rewards = self._rewards
        return [[rewards.get((key, r)) for r in sorted(self._by_key.get(key) or ())] for key in keys]

    @classmethod
    def from_state(cls, state: Sequence[list[str] | None] | None, keys: Sequence[str],
                   rewards: Sequence[list[float | None]] | None = None) -> LearnedRoutes:
        """``to_state``'s lists for the last ``len(keys)`` keys saved (and ``rewards_state``'s, None: an index
        saved before they were kept). None (an index saved before these were kept): every route learned every
        task, as the novelty of an event was judged then (a task seen before was no evidence for any route), so
        a replay decides as it did."""
        lists = [None] * len(keys) if state is None else list(state)[len(state) - len(keys):]
        out = cls()
        out._by_key = {k: (None if r is None else tuple(r)) for k, r in zip(keys, lists, strict=True)
                       if r is None or r}
        if rewards is not None:
            for key, routes, values in zip(keys, lists, list(rewards)[len(rewards) - len(keys):], strict=True):
                for route, value in zip(routes or (), values, strict=True):
                    if value is not None:
                        out._rewards[(key, route)] = float(value)
        return out
