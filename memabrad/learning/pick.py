"""The one rule every ranking of candidates follows: highest score, ties to the smallest route name;
and serving's exploration around that pick, with its exact propensity.

Written as a loop rather than ``min(scores, key=lambda r: (-scores[r], r))``: it runs several times
per trajectory on the record path, and the loop builds no key tuple and makes no call per candidate.
"""

from __future__ import annotations

import random
from typing import Any


def best_route(scores: dict[str, float]) -> str:
    """The highest score; ties go to the lexicographically smallest route name.

    The same pick as ``min(scores, key=lambda r: (-scores[r], r))`` for any floats: a later route
    replaces the current one exactly when its key is smaller, i.e. its score is higher, or equal with
    a smaller name (a NaN neither replaces nor is replaced, as there).

    >>> best_route({"b": 1.0, "a": 1.0, "c": 0.5})
    'a'
    >>> best_route({"x": float("nan"), "y": 2.0})
    'x'
    """
    it = iter(scores.items())
    best, top = next(it)
    for r, s in it:
        if s > top or (s == top and r < best):
            best, top = r, s
    return best


def explore(greedy: str, cands: tuple[str, ...], epsilon: float, rng: random.Random | Any | None) -> tuple[str, float]:
    """``greedy``, or with probability ``epsilon`` a uniform draw; and the served route's exact propensity."""
    k = len(cands)
    route = greedy
    if epsilon > 0.0:
        rng = rng if rng is not None else random.Random()
        if rng.random() < epsilon:
            route = cands[int(rng.random() * k) % k]
    share = epsilon / k
    return route, (1.0 - epsilon) + share if route == greedy else share
