"""Asymptotic confidence sequences: intervals that stay valid however often one looks.

A fixed-n interval at 95% is wrong 5% of the time *per look*; a daemon that looks every
thousand trajectories and acts on the first favourable look is wrong far more often.
A confidence sequence covers the running mean at every n simultaneously with
probability at least 1 - alpha, so a decision may be taken at any look, as often as
one likes, and the error rate is still alpha.

This is the Gaussian-mixture boundary of Waudby-Smith, Arnold, Wu, Howard and Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences" (2021):

    mean_n +/- sigma_n * sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) * log( sqrt(n rho^2 + 1) / alpha ) )

with ``sigma_n`` the running standard deviation. It needs no bound on the values (the
influence values of importance-weighted estimators have none that is useful), and it
holds for martingale differences whose conditional means drift — the case of a
challenger that changes while it is being judged, where it covers the running average
of the conditional means. ``rho`` only decides where the sequence is tightest
(``target_n``); every choice is valid.

A gate asks a one-sided question ("is the error rate at most 0.02 worse?"), and a two-sided
sequence spends its alpha on both sides. Mixing over positive slopes only (a half-normal
mixture, Howard, Ramdas, McAuliffe and Sekhon 2021, section 3.5) gives a one-sided bound that
is wrong at any look with probability at most alpha: the running sum S_n of standardised
values stays below ``x * sqrt(V + r)`` where ``exp(x^2 / 2) * Phi(x) = sqrt((V + r) / r) / (2 alpha)``
(V = n, r = 1 / rho^2). It is about the two-sided bound at 2 alpha.
"""

from __future__ import annotations

import math


def cs_rho(alpha: float, target_n: float) -> float:
    """The mixture width that makes the boundary tightest at ``target_n`` observations.

    >>> round(cs_rho(0.05, 5000), 6)
    0.03984
    """
    la = -2.0 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1.0)) / target_n)


def cs_half_width(sd: float, n: int, alpha: float, target_n: float) -> float:
    """Half width of the two-sided sequence after ``n`` values with running standard deviation ``sd``.

    At ``target_n`` it is about 1.5x the fixed-n normal half width; that is the price of
    being allowed to look at every n.

    >>> fixed = 1.959964 / math.sqrt(5000)
    >>> 1.4 < cs_half_width(1.0, 5000, 0.05, 5000) / fixed < 1.6
    True
    >>> cs_half_width(1.0, 0, 0.05, 5000)
    inf
    """
    if n <= 0 or not math.isfinite(sd):
        return math.inf
    r2 = cs_rho(alpha, target_n) ** 2
    t = n * r2 + 1.0
    return sd * math.sqrt(2.0 * t / (n * n * r2) * math.log(math.sqrt(t) / alpha))


def asymptotic_cs(mean: float, sd: float, n: int, alpha: float, target_n: float) -> tuple[float, float]:
    """(low, high) of the two-sided asymptotic confidence sequence at level 1 - ``alpha``.

    >>> lo, hi = asymptotic_cs(0.2, 1.0, 5000, 0.05, 5000)
    >>> round(lo, 4), round(hi, 4)
    (0.1571, 0.2429)
    """
    h = cs_half_width(sd, n, alpha, target_n)
    return mean - h, mean + h


def _half_normal_root(c: float) -> float:
    """The x >= 0 with ``exp(x^2 / 2) * Phi(x) = c`` (c > 1/2), by bisection: the left side increases.

    >>> x = _half_normal_root(30.0)
    >>> round(math.exp(x * x / 2) * 0.5 * math.erfc(-x / math.sqrt(2)), 6)
    30.0
    """
    lo, hi = 0.0, math.sqrt(2.0 * math.log(2.0 * c))  # Phi <= 1 below, Phi >= 1/2 above
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        if mid * mid / 2.0 + math.log(0.5 * math.erfc(-mid / math.sqrt(2.0))) < math.log(c):
            lo = mid
        else:
            hi = mid
    return hi


def cs_one_sided_width(sd: float, n: int, alpha: float, target_n: float) -> float:
    """Distance from the running mean of a one-sided bound that holds at every n with probability 1 - ``alpha``.

    Each side at ``alpha`` sits about where the two-sided sequence at ``2 alpha`` does, well inside the
    two-sided sequence at ``alpha``:

    >>> one = cs_one_sided_width(1.0, 2000, 0.05, 5000)
    >>> cs_half_width(1.0, 2000, 0.10, 5000) * 0.98 < one < cs_half_width(1.0, 2000, 0.05, 5000) * 0.95
    True
    >>> cs_one_sided_width(1.0, 0, 0.05, 5000)
    inf
    """
    if n <= 0 or not math.isfinite(sd):
        return math.inf
    r2 = cs_rho(min(2.0 * alpha, 0.5), target_n) ** 2
    t = n * r2 + 1.0
    return sd * _half_normal_root(math.sqrt(t) / (2.0 * alpha)) * math.sqrt(t / r2) / n
