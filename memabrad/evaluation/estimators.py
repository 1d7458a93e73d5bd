"""Off-policy estimators of a deterministic policy's value from logged bandit data.

Every estimator reduces to per-task *influence* values ``phi_i`` whose mean is the
estimate. That one representation gives each estimate its normal-approximation
confidence interval and gives challenger-minus-baseline deltas paired per task
(``phi_challenger_i - phi_baseline_i``), whose variance is usually far smaller than
the sum of the two variances.

Notation: ``y`` the logged outcome, ``p`` the logging propensity of the logged route,
``match`` whether the evaluated policy picks the logged route, ``q_pi`` the outcome
model's prediction for the policy's route and ``q_log`` for the logged route.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

ESTIMATORS = ("dr", "ips", "snips", "on_policy", "replay")


def z_value(confidence: float) -> float:
    """Two-sided normal quantile.

    >>> round(z_value(0.95), 4)
    1.96
    """
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval.

    ``bound_low`` / ``bound_high``: one-sided bounds, each wrong with at most the interval's whole
    alpha, where the method gives them (the progressive evidence); a gate asks a one-sided question
    and compares these, while ``ci_low`` / ``ci_high`` stay the reported two-sided interval."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    bound_low: float | None = None
    bound_high: float | None = None

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2.0


def mean_interval(phi: np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean of influence values with a normal CI (sample std, n - 1).

    >>> iv = mean_interval(np.array([1.0, 0.0, 1.0, 0.0]))
    >>> (iv.value, round(iv.ci_low, 4), round(iv.ci_high, 4))
    (0.5, -0.0658, 1.0658)
    """
    n = int(phi.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(phi.mean())
    if n == 1:
        return Interval(mean, mean, mean, 1)
    half = z_value(confidence) * float(phi.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def ips_influence(y: np.ndarray, p: np.ndarray, match: np.ndarray) -> np.ndarray:
    """Inverse propensity scoring: ``match / p * y``.

    >>> ips_influence(np.array([1.0, 0.5]), np.array([0.5, 0.25]), np.array([True, False])).tolist()
    [2.0, 0.0]
    """
    return np.where(match, y / p, 0.0)


def snips_influence(y: np.ndarray, p: np.ndarray, match: np.ndarray) -> np.ndarray:
    """Self-normalised IPS, linearised (delta method) so its mean is the SNIPS estimate.

    >>> phi = snips_influence(np.array([1.0, 0.0, 1.0]), np.array([0.5, 0.5, 0.25]),
    ...                       np.array([True, True, False]))
    >>> round(float(phi.mean()), 6)   # (2*1 + 2*0) / (2 + 2)
    0.5
    """
    w = np.where(match, 1.0 / p, 0.0)
    total = w.sum()
    if total <= 0:
        return np.full_like(y, np.nan, dtype=float)
    value = float((w * y).sum() / total)
    return value + w * (y - value) / w.mean()


def dr_influence(
    y: np.ndarray, p: np.ndarray, match: np.ndarray, q_pi: np.ndarray, q_log: np.ndarray
) -> np.ndarray:
    """Doubly robust: model prediction plus the importance-weighted residual.

    >>> dr_influence(np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([True, False]),
    ...              np.array([0.6, 0.3]), np.array([0.6, 0.2])).tolist()
    [1.4, 0.3]
    """
    return q_pi + np.where(match, (y - q_log) / p, 0.0)


def effective_sample_size(p: np.ndarray, match: np.ndarray) -> float:
    """Kish's effective sample size of the importance weights ``match / p``.

    >>> effective_sample_size(np.array([0.5, 0.5, 0.5]), np.array([True, True, False]))
    2.0
    """
    w = np.where(match, 1.0 / p, 0.0)
    s2 = float((w * w).sum())
    return float(w.sum()) ** 2 / s2 if s2 > 0 else 0.0


def influence(
    estimator: str,
    y: np.ndarray,
    p: np.ndarray,
    match: np.ndarray,
    q_pi: np.ndarray | None = None,
    q_log: np.ndarray | None = None,
) -> np.ndarray:
    """Dispatch by estimator name; DR needs the outcome model's predictions."""
    if estimator == "ips":
        return ips_influence(y, p, match)
    if estimator == "snips":
        return snips_influence(y, p, match)
    if estimator == "dr":
        if q_pi is None or q_log is None:
            raise ValueError("dr needs outcome-model predictions")
        return dr_influence(y, p, match, q_pi, q_log)
    if estimator == "on_policy":
        return y.astype(float)
    raise ValueError(f"unknown estimator {estimator!r}")
