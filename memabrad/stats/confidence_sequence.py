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
