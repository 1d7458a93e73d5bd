"""Each numeric feature's location and scale, learned from its first values and then fixed.

A number in ``task.features`` reaches a route's linear model two ways (``features.py``): on knots of
its logarithm, which learn any shape of effect but spread it over a dozen weights, and, from
features version 5, as one standardised term ``z = (v - mean) / sd`` that learns a linear effect
(a pixel's darkness, an embedding's coordinate, a count) in one weight. Standardising makes
the term the same whatever the number's units: prices in USD or cents, tokens or kilotokens.

The mean and standard deviation of a name come from its first ``FREEZE_AT`` values (Welford's
running sums) and are fixed from then on. A fixed scale keeps a task's features a pure function
of the task once its names are known, so every model that learned with them — the challenger, the
portfolio, a version saved at any later look — featurises it the same way, and a model saved at
one look keeps its meaning. Until a name has ``FREEZE_AT`` values that are not all equal it has
no linear term (its knots carry it); a number that never varies never gets one. At most
``MAX_NAMES`` names are tracked (the first ones seen), so the state is bounded whatever the traffic.

>>> s = NumberScales()
>>> for i in range(FREEZE_AT):
...     s.observe({"tokens": float(i % 8), "flag": 1.0})
>>> abs(s.z("tokens", 3.5)) < 1e-9, s.z("flag", 1.0)  # the mean of 0..7; a constant has no term
(True, None)
>>> round(s.z("tokens", 7.0), 3)
1.516
>>> NumberScales.from_state(s.to_state()).z("tokens", 7.0) == s.z("tokens", 7.0)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

FREEZE_AT = 64  # values behind a name's mean and spread (the spread's standard error is ~9% there)
MAX_NAMES = 1024  # names tracked; the contract allows 256 numbers per task
Z_CLIP = 5.0  # a standardised value is clipped to +-Z_CLIP (one outlier does not take over the task's vector)


class NumberScales:
    """Per name: running (count, mean, sum of squared deviations) until frozen, then (mean, 1 / sd)."""

    def __init__(self) -> None:
        self.pending: dict[str, list[float]] = {}
        self.frozen: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self.frozen)

    def observe(self, features: Mapping[str, Any]) -> None:
        """Count one task's numbers in the scales of the names not fixed yet."""
        frozen, pending = self.frozen, self.pending
        for name, value in features.items():
            if name in frozen:
                continue
            v = float(value)
            if not math.isfinite(v):
                continue
            s = pending.get(name)
            if s is None:
                if len(pending) + len(frozen) >= MAX_NAMES:
                    continue
                s = pending[name] = [0.0, 0.0, 0.0]
            s[0] += 1.0
            d = v - s[1]
            s[1] += d / s[0]
            s[2] += d * (v - s[1])
            if not (math.isfinite(s[1]) and math.isfinite(s[2])):  # values near the float limit overflowed
                s[:] = [0.0, 0.0, 0.0]
            elif s[0] >= FREEZE_AT and s[2] > 0.0:
                inv_sd = 1.0 / math.sqrt(s[2] / (s[0] - 1.0))
                if inv_sd > 0.0:  # 0 for a spread beyond the float range: no term
                    frozen[name] = (s[1], inv_sd)
                    del pending[name]

    def z(self, name: str, value: float) -> float | None:
        """``value`` standardised by ``name``'s fixed scale (clipped), None while it has none."""
        s = self.frozen.get(name)
        if s is None or value != value:  # a NaN has no place on any scale
            return None
        z = (value - s[0]) * s[1]
        return Z_CLIP if z > Z_CLIP else (-Z_CLIP if z < -Z_CLIP else z)

    def copy(self) -> NumberScales:
        twin = NumberScales()
        twin.pending = {k: list(v) for k, v in self.pending.items()}
        twin.frozen = dict(self.frozen)
        return twin

    def to_state(self) -> dict[str, Any]:
        """Plain data, sorted by name (an exported model is a deterministic function of its events)."""
        return {"frozen": {k: list(v) for k, v in sorted(self.frozen.items())},
                "pending": {k: list(v) for k, v in sorted(self.pending.items())}}

    @classmethod
    def from_state(cls, s: Mapping[str, Any] | None) -> NumberScales:
        out = cls()
        if s:
            out.frozen = {str(k): (float(v[0]), float(v[1])) for k, v in s["frozen"].items()}
            out.pending = {str(k): [float(a) for a in v] for k, v in s["pending"].items()}
        return out
