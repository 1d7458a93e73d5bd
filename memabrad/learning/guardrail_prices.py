"""Prices on predicted latency and errors, so a challenger stays inside the guardrails it is judged by.

The gates promote a challenger only if its error rate and latency are at most
``promotion.max_error_rate_increase`` / ``max_latency_increase_ms`` worse than the baseline's. A
router that ranks routes by reward alone can win on reward by sending tasks to slower or less
reliable routes, and then is never promoted however much better it is: its gain never reaches
anyone. So each route's score also pays for its predicted outcome — ``latency_per_s`` per
predicted second and ``error`` per unit of predicted error probability (``Prices``) — and the
prices are learned: the Lagrange multipliers of "keep each guardrail delta under ``AIM`` of its
allowance", moved by dual ascent at every look (``Repricer``).

At a look, each price moves on what the member did since its previous look: the latency delta
against the baseline from its own progressive evidence (doubly robust, every trajectory); the
error-rate delta as its outcome model predicts it (the error head's predicted error probability of
the member's choice minus the baseline's), shifted by how far all the evidence's doubly robust
error deltas sit from its predicted ones. A coin flip times an importance weight of twenty makes
the doubly robust error delta of a thousand trajectories too noisy to steer by (it moved a price
from 0 to 0.84 in one look), while the predictions are smooth; but a member that ranks by predicted
errors picks where they are predicted low, so its predictions alone flatter it, and the shift,
averaged over all the evidence, removes that. The error price steers the upper end of that
signal — the shifted delta plus its standard error (the shift's included) — as the gate judges an
upper bound: a member known only to +-0.006 that sat at its aim would stay unprovable (on the help
desk it did, for 40,000 trajectories). A price rises when its delta (the error's upper end) is above
the aim and falls (never below zero) when it is under, by ``STEP`` x the spread of the rewards seen
x the excess in allowances, less one standard error of the delta since the last look (for the
error, of its predictions), so noise alone moves nothing.

The aim is where the gate can prove the guardrail: ``AIM`` of the allowance, or less when the
gate's one-sided bound is still wide — the allowance minus the bound's distance from the estimate,
never below zero (no worse than the baseline), so a member does not spend an allowance the gate
cannot yet grant. With no guardrail pressure the prices stay at zero and the router ranks exactly
as without them. Prices are part of the model (a saved version chooses as it was judged) and the
marks are in the learner's checkpoint, so a replay reprices identically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from memabrad.stats.confidence_sequence import cs_one_sided_width
from memabrad.stats.moments import Moments

FloatOrArray = TypeVar("FloatOrArray", float, np.ndarray)

AIM = 0.5  # the share of each allowance a challenger aims to stay under
STEP = 0.05  # dual-ascent step, in reward spreads per allowance of excess


@dataclass
class Prices:
    """What a route's score gives up per predicted second of latency and per unit of predicted error
    probability (reward units).

    >>> round(Prices(0.2, 1.0).penalty(0.05, 500.0), 6)
    0.15
    >>> Prices().active, Prices.from_state(Prices(0.2, 0.0).to_state())
    (False, Prices(latency_per_s=0.2, error=0.0))
    >>> Prices.from_list(Prices(0.2, 1.5).to_list()), Prices(0.2, 1.5).to_dict()
    (Prices(latency_per_s=0.2, error=1.5), {'latency_per_s': 0.2, 'error': 1.5})
    """

    latency_per_s: float = 0.0
    error: float = 0.0

    @property
    def active(self) -> bool:
        return self.latency_per_s > 0.0 or self.error > 0.0

    def penalty(self, error_rate: FloatOrArray, latency_ms: FloatOrArray) -> FloatOrArray:
        """The price of a predicted error rate and latency (or of arrays of them: ``batch.py``)."""
        return self.latency_per_s * latency_ms / 1000.0 + self.error * error_rate

    def to_list(self) -> list[float]:
        """``[latency_per_s, error]``: how a model's and a portfolio member's state hold them."""
        return [self.latency_per_s, self.error]

    @classmethod
    def from_list(cls, v: Any) -> Prices:
        return cls(float(v[0]), float(v[1]))

    def to_dict(self) -> dict[str, float]:
        """The report's ``guardrail_prices`` object."""
        return {"latency_per_s": round(self.latency_per_s, 6), "error": round(self.error, 6)}

    def to_state(self) -> dict[str, Any]:
        """A model's export: nothing while both are zero, so a model that never priced exports as before."""
        return {"guardrail_prices": self.to_list()} if self.active else {}

    @classmethod
    def from_state(cls, state: Any) -> Prices:
        v = state.get("guardrail_prices")
        return cls.from_list(v) if v else cls()

    def copy(self) -> Prices:
        return Prices(self.latency_per_s, self.error)


class _Evidence(Protocol):
    baseline_version_id: str | None
    delta: list[Moments]
    error_smooth: Moments  # the predicted error-rate delta per trajectory

    def error_variance(self) -> float: ...


@dataclass
class Mark:
    """A member's predicted error-rate and latency deltas at its last look, against which baseline."""

    error: Moments  # the predicted error-rate deltas (``error_smooth``)
    latency: Moments
    baseline: str | None

    def to_state(self) -> dict[str, Any]:
        return {"error_model": self.error.to_state(), "latency": self.latency.to_state(), "baseline": self.baseline}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Mark | None:
        """None for a mark of the first version (it held the doubly robust error delta): the next look
        takes the whole evidence as new, as after a restart."""
        if "error_model" not in s:
            return None
        return cls(Moments.from_state(s["error_model"]), Moments.from_state(s["latency"]), s["baseline"])


def aim(allowance: float, width: float) -> float:
    """The share of the allowance to aim at: ``AIM``, or what the gate's bound leaves of the allowance.

    >>> aim(250.0, 40.0), aim(0.02, 0.015), aim(0.02, 0.03)
    (0.5, 0.25, 0.0)
    """
    room = 1.0 - width / allowance if math.isfinite(width) else 0.0
    return min(AIM, max(0.0, room))


def _move(price: float, since: Moments, allowance: float, spread: float, target: float = AIM) -> float:
    """One dual-ascent step of a price in reward per allowance: up by the excess over ``target`` (a share
    of the allowance), down by the room under it, each less one standard error.

    >>> m = Moments(1000, 200.0, 999 * 100.0 ** 2)  # latency delta 200 ms, sd 100 ms, allowance 250 ms
    >>> round(_move(0.0, m, 250.0, 0.3), 4)
    0.0043
    >>> _move(0.005, Moments(1000, 0.0, 999 * 100.0 ** 2), 250.0, 0.3)  # well under: down, not below zero
    0.0
    """
    if since.n < 2 or allowance <= 0.0 or not math.isfinite(allowance):
        return price
    excess = since.mean / allowance - target
    se = math.sqrt(max(since.variance, 0.0) / since.n) / allowance
    shrunk = math.copysign(max(0.0, abs(excess) - se), excess)
    return max(0.0, price + STEP * spread * shrunk)


def _upper_end(since: Moments, predicted: Moments, observed: Moments, floor: float) -> Moments:
    """The upper end of the member's error-rate delta since the last look: its predicted deltas, shifted
    by how far all the evidence's doubly robust deltas (``observed``) sit from its predicted ones (a
    member that ranks by predicted errors picks where they are predicted low, so its predictions flatter
    it; the shift is unbiased), plus one standard error of the two (that of the doubly robust mean from
    ``floor``, its model-based variance). The gate promotes on an upper bound, so the price keeps this
    end, not the estimate, under its aim. Its spread is the predictions' alone: the standard error is in
    the signal already, and the dead band of ``_move`` is then only the noise of the predictions.

    >>> since = Moments(1000, 0.0, 999 * 0.01 ** 2)  # predicted: no worse than the baseline
    >>> u = _upper_end(since, Moments(5000, 0.0, 0.0), Moments(5000, 0.012, 4999 * 0.5 ** 2), 0.25)
    >>> round(u.mean, 4), round(math.sqrt(u.variance / u.n), 4)  # observed 0.012 worse, +- 0.0071
    (0.0191, 0.0003)
    """
    if since.n < 2 or observed.n < 2 or predicted.n < 2:
        return since
    se2 = max(since.variance, 0.0) / since.n + observed.variance_at_least(floor) / observed.n
    return Moments(since.n, since.mean + observed.mean - predicted.mean + math.sqrt(se2), since.m2)


@dataclass
class Repricer:
    """The guardrail allowances, the gates' alpha and ``target_n``, and each member's mark; ``look`` moves
    the members' prices."""

    error_allowance: float
    latency_allowance_ms: float
    alpha: float = 0.025  # a member's gate alpha: the stream's, shared among the portfolio
    target_n: int = 5000
    marks: dict[str, Mark] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: Any, state: dict[str, Any] | None = None) -> Repricer | None:
        """From a ``Config`` (None when no portfolio member is priced), with saved marks."""
        if not any(m.guardrail_prices for m in cfg.router.portfolio):
            return None
        marks = {k: m for k, v in (state or {}).items() if (m := Mark.from_state(v)) is not None}
        alpha = (1.0 - cfg.evaluation.confidence) / (len(cfg.router.portfolio) + 1)
        return cls(cfg.promotion.max_error_rate_increase, cfg.promotion.max_latency_increase_ms, alpha,
                   cfg.evaluation.target_n, marks)

    def _width(self, m: Moments, floor: float = math.nan) -> float:
        """About the distance of the gate's one-sided bound from the estimate (inf before two trajectories)."""
        if m.n < 2:
            return math.inf
        return cs_one_sided_width(math.sqrt(m.variance_at_least(floor)), m.n, self.alpha, self.target_n)

    def look(self, members: list[tuple[str, Prices, float, _Evidence]]) -> None:
        """At a look: move each (name, prices, reward spread, evidence)'s prices by its deltas since its
        last look."""
        for name, p, spread, ev in members:
            err, lat = ev.error_smooth, ev.delta[2]
            mark = self.marks.get(name)
            if mark is None or mark.baseline != ev.baseline_version_id or mark.latency.n > lat.n:
                since_e, since_l = err, lat  # the evidence restarted: all of it is new
            else:
                since_e, since_l = err.minus(mark.error), lat.minus(mark.latency)
            a_ms, a_err = self.latency_allowance_ms, self.error_allowance
            if a_ms > 0:
                to = aim(a_ms, self._width(lat))
                p.latency_per_s = _move(p.latency_per_s * a_ms / 1000.0, since_l, a_ms, spread, to) * 1000.0 / a_ms
            if a_err > 0:
                floor = ev.error_variance()
                to = aim(a_err, self._width(ev.delta[1], floor))
                p.error = _move(p.error * a_err, _upper_end(since_e, err, ev.delta[1], floor), a_err, spread,
                                to) / a_err
            self.marks[name] = Mark(err.copy(), lat.copy(), ev.baseline_version_id)

    def to_state(self) -> dict[str, Any]:
        return {k: m.to_state() for k, m in sorted(self.marks.items())}
