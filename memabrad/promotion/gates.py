"""Promotion gates: each compares one benchmark number with its threshold.

In *point* mode (the seed's behaviour) a gate compares the point estimate. In
*statistical* mode it compares the confidence bound that matters — the lower bound of a
quantity that must be high enough, the upper bound of one that must stay low — and a
gate whose interval straddles the threshold is ``inconclusive`` rather than passed or
failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["pass", "fail", "inconclusive"]
Direction = Literal[">=", "<="]

_WORDS = {">=": ("min", "<"), "<=": ("max", ">")}


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome with a reason in plain words."""

    name: str
    value: float
    threshold: float
    direction: Direction
    status: Status
    reason: str
    ci_low: float | None = None
    ci_high: float | None = None
    compared: Literal["estimate", "ci_low", "ci_high"] = "estimate"
    one_sided: bool = False
    """``ci_low`` / ``ci_high`` are two one-sided bounds, each wrong with at most ``alpha``."""
    alpha: float | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": _r(self.value),
            "threshold": _r(self.threshold),
            "passed": self.passed,
            "status": self.status,
            "compared": self.compared,
            "reason": self.reason,
        }
        if self.ci_low is not None:
            out["ci_low"] = _r(self.ci_low)
            out["ci_high"] = _r(self.ci_high)
        if self.alpha is not None:
            out["alpha"] = _r(self.alpha)
            out["one_sided"] = self.one_sided
        return out


def _r(v: float | None) -> float | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return round(float(v), 6)


def _fmt(v: float) -> str:
    if isinstance(v, int) or float(v).is_integer() and abs(v) >= 1:
        return str(int(v))
    return f"{v:.3f}"


def _ok(x: float, threshold: float, direction: Direction) -> bool:
    return x >= threshold if direction == ">=" else x <= threshold


def point_gate(name: str, value: float, threshold: float, direction: Direction) -> GateResult:
    """Gate on the point estimate.

    >>> point_gate("reward_delta", 0.012, 0.02, ">=").reason
    'reward_delta 0.012 < min 0.020'
    >>> point_gate("task_count", 250, 200, ">=").passed
    True
    """
    word, bad = _WORDS[direction]
    if value is None or math.isnan(value):
        return GateResult(name, math.nan, threshold, direction, "fail", f"{name} could not be estimated")
    good = _ok(value, threshold, direction)
    op = direction if good else bad
    reason = f"{name} {_fmt(value)} {op} {word} {_fmt(threshold)}"
    return GateResult(name, value, threshold, direction, "pass" if good else "fail", reason)


def percent(confidence: float) -> str:
    """A confidence level as a reason states it: as many decimals as it has, up to three, so a
    member's share of alpha (0.995, 0.9875) does not read as 100% or 99%.

    >>> percent(0.95), percent(0.975), percent(0.9875), percent(0.99583333)
    ('95%', '97.5%', '98.75%', '99.583%')
    """
    return f"{confidence * 100:.3f}".rstrip("0").rstrip(".") + "%"


def interval_gate(
    name: str,
    value: float,
    ci_low: float | None,
    ci_high: float | None,
    threshold: float,
    direction: Direction,
    confidence: float = 0.95,
    *,
    one_sided: bool = False,
) -> GateResult:
    """Gate on the confidence bound; straddling the threshold is inconclusive.

    ``one_sided``: ``ci_low`` and ``ci_high`` are one-sided bounds, each at ``confidence``, so that
    ``pass`` and ``fail`` are each wrong with probability at most ``1 - confidence``.

    >>> g = interval_gate("reward_delta", 0.03, 0.01, 0.05, 0.02, ">=")
    >>> (g.status, g.reason)
    ('inconclusive', 'reward_delta 0.030, 95% interval [0.010, 0.050] straddles min 0.020')
    >>> interval_gate("reward_delta", 0.05, 0.03, 0.07, 0.02, ">=").status
    'pass'
    >>> interval_gate("error_rate_delta", 0.05, 0.03, 0.07, 0.02, "<=").status
    'fail'
    >>> interval_gate("error_rate_delta", 0.0, -0.01, 0.015, 0.02, "<=", 0.97, one_sided=True).reason
    'error_rate_delta 0.000, one-sided 97% bounds [-0.010, 0.015] <= max 0.020'
    """
    word, bad = _WORDS[direction]
    if ci_low is None or ci_high is None or any(math.isnan(v) for v in (value, ci_low, ci_high)):
        return GateResult(name, math.nan, threshold, direction, "inconclusive",
                          f"{name} could not be estimated", ci_low, ci_high)
    safe, risky = (ci_low, ci_high) if direction == ">=" else (ci_high, ci_low)
    compared: Literal["ci_low", "ci_high"] = "ci_low" if direction == ">=" else "ci_high"
    kind = "one-sided {} bounds" if one_sided else "{} interval"
    span = f"{_fmt(value)}, {kind.format(percent(confidence))} [{_fmt(ci_low)}, {_fmt(ci_high)}]"
    if _ok(safe, threshold, direction):
        status: Status = "pass"
        reason = f"{name} {span} {direction} {word} {_fmt(threshold)}"
    elif not _ok(risky, threshold, direction):
        status = "fail"
        reason = f"{name} {span} {bad} {word} {_fmt(threshold)}"
    else:
        status = "inconclusive"
        reason = f"{name} {span} straddles {word} {_fmt(threshold)}"
    return GateResult(name, value, threshold, direction, status, reason, ci_low, ci_high, compared,
                      one_sided, 1.0 - confidence)
