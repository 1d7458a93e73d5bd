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
([['kb'], []], [[1.0], []])
>>> LearnedRoutes.from_state(None, ["old task"]).learned("old task", "llm")  # saved before: every route
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class LearnedRoutes:
    """Task key -> (the routes that learned it, in the order they did; the reward each last learned it with,
    None where that was not kept), two aligned tuples, which the cyclic collector stops tracking (a set it never
    does); None: every route (an index saved before routes were kept)."""

    def __init__(self) -> None:
        self._by_key: dict[str, tuple[tuple[str, ...], tuple[float | None, ...]] | None] = {}

    def add(self, key: str, route: str, reward: float | None = None) -> None:
        entry = self._by_key.get(key, _NONE_YET)
        if entry is None:
            return
        routes, rewards = entry
        if route not in routes:
            self._by_key[key] = ((*routes, route), (*rewards, reward))
        elif reward is not None:
            i = routes.index(route)
            self._by_key[key] = (routes, (*rewards[:i], reward, *rewards[i + 1:]))

    def learned(self, key: str, route: str) -> bool:
        return self.last(key, route)[0]

    def previous(self, key: str, route: str) -> float | None:
        """The reward ``route`` last learned task ``key`` with (None: it has not, or that was not kept)."""
        return self.last(key, route)[1]

    def last(self, key: str, route: str) -> tuple[bool, float | None]:
        """(``learned``, ``previous``) in one lookup: an event asks both before its route learns it."""
        entry = self._by_key.get(key, _NONE_YET)
        if entry is None:
            return True, None
        routes = entry[0]
        return (True, entry[1][routes.index(route)]) if route in routes else (False, None)

    def drop(self, key: str) -> None:
        self._by_key.pop(key, None)

    def to_state(self, keys: Iterable[str]) -> tuple[list[list[str] | None], list[list[float | None]]]:
        """Per key, in ``keys``' order: its routes sorted (None: every route), and the reward each last learned it
        with, in that order (None: not kept)."""
        routes_out: list[list[str] | None] = []
        rewards_out: list[list[float | None]] = []
        for key in keys:
            entry = self._by_key.get(key, _NONE_YET)
            if entry is None:
                routes_out.append(None)
                rewards_out.append([])
                continue
            pairs = sorted(zip(*entry, strict=True))
            routes_out.append([route for route, _ in pairs])
            rewards_out.append([reward for _, reward in pairs])
        return routes_out, rewards_out

    @classmethod
    def from_state(cls, state: Sequence[list[str] | None] | None, keys: Sequence[str],
                   rewards: Sequence[list[float | None]] | None = None) -> LearnedRoutes:
        """``to_state``'s route lists for the last ``len(keys)`` keys saved (and its rewards, None: an index saved
        before they were kept). None (an index saved before these were kept): every route learned every
        task, as the novelty of an event was judged then (a task seen before was no evidence for any route), so
        a replay decides as it did."""
        lists = [None] * len(keys) if state is None else list(state)[len(state) - len(keys):]
        values = [None] * len(keys) if rewards is None else list(rewards)[len(rewards) - len(keys):]
        out = cls()
        for key, routes, saved in zip(keys, lists, values, strict=True):
            if routes is None:
                out._by_key[key] = None
            elif routes:
                kept = (None,) * len(routes) if saved is None else tuple(None if v is None else float(v) for v in saved)
                if len(kept) != len(routes):
                    raise ValueError(f"learned_rewards of {key!r}: {len(kept)} values for {len(routes)} routes")
                out._by_key[key] = (tuple(routes), kept)
        return out


_NONE_YET: tuple[tuple[str, ...], tuple[float | None, ...]] = ((), ())  # a task no route has learned
