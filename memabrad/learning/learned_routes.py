"""Which routes have learned each task: what makes an event new evidence for a route's stacking weights.

A route's contextual part may have memorised a task it learned (a text model, a repeated prompt), so
such an event says nothing about how it does on tasks it has not learned; a task only *other* routes
learned is still new to it. Where tasks recur under a skewed logging policy, a route tried rarely
keeps meeting tasks new to it long after the main route has met them all. Kept beside the case
index's cases, evicted and saved with them.

>>> learned = LearnedRoutes()
>>> learned.add("reset my password", "kb")
>>> learned.learned("reset my password", "kb"), learned.learned("reset my password", "llm")
(True, False)
>>> learned.to_state(["reset my password", "other"])
[['kb'], []]
>>> LearnedRoutes.from_state(None, ["old task"]).learned("old task", "llm")  # saved before: every route
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class LearnedRoutes:
    """Task key -> the routes that learned it, in the order they did: a tuple of strings, which the cyclic
    collector stops tracking (a set it never does); None: every route."""

    def __init__(self) -> None:
        self._by_key: dict[str, tuple[str, ...] | None] = {}

    def add(self, key: str, route: str) -> None:
        routes = self._by_key.get(key, ())
        if routes is not None and route not in routes:
            self._by_key[key] = (*routes, route)

    def learned(self, key: str, route: str) -> bool:
        routes = self._by_key.get(key, ())
        return routes is None or route in routes

    def drop(self, key: str) -> None:
        self._by_key.pop(key, None)

    def to_state(self, keys: Iterable[str]) -> list[list[str] | None]:
        """Per key, in ``keys``' order, its routes sorted (None: every route)."""
        out: list[list[str] | None] = []
        for key in keys:
            routes = self._by_key.get(key, ())
            out.append(None if routes is None else sorted(routes))
        return out

    @classmethod
    def from_state(cls, state: Sequence[list[str] | None] | None, keys: Sequence[str]) -> LearnedRoutes:
        """``to_state``'s lists for the last ``len(keys)`` keys saved. None (an index saved before these were
        kept): every route learned every task, as the novelty of an event was judged then (a task seen
        before was no evidence for any route), so a replay decides as it did."""
        lists = [None] * len(keys) if state is None else list(state)[len(state) - len(keys):]
        out = cls()
        out._by_key = {k: (None if r is None else tuple(r)) for k, r in zip(keys, lists, strict=True)
                       if r is None or r}
        return out
