"""Running mean and variance, one value at a time, mergeable, exact to restore.

Welford's update keeps the sum of squared deviations (``m2``) instead of the raw sum of
squares, so latency-sized values (thousands of milliseconds, squared, summed over
millions of trajectories) lose no precision. Two ``Moments`` of disjoint streams merge
into the moments of their union (Chan et al.), which lets partitions or portfolio
members pool their evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of the values seen.

    >>> m = Moments()
    >>> for v in (1.0, 2.0, 3.0, 4.0):
    ...     m.add(v)
    >>> (m.n, m.mean, m.variance)
    (4, 2.5, 1.6666666666666667)
    >>> a, b = Moments(), Moments()
    >>> for v in (1.0, 2.0):
    ...     a.add(v)
    >>> for v in (3.0, 4.0):
    ...     b.add(v)
    >>> a.merge(b) == m
    True
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: float) -> None:
        self.n += 1
        d = value - self.mean
        self.mean += d / self.n
        self.m2 += d * (value - self.mean)

    @property
    def variance(self) -> float:
        """Sample variance (n - 1); NaN below two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan

    def variance_at_least(self, floor: float) -> float:
        """The sample variance (0 if negative by rounding), or ``floor`` (a model-based variance; NaN: none)
        where that is larger.

        >>> Moments(3, 0.0, 2.0).variance_at_least(float("nan")), Moments(3, 0.0, 2.0).variance_at_least(4.0)
        (1.0, 4.0)
        """
        var = max(self.variance, 0.0)
        return floor if floor > var else var

    def merge(self, other: Moments) -> Moments:
        """The moments of both streams together (neither operand changes)."""
        n = self.n + other.n
        if n == 0:
            return Moments()
        d = other.mean - self.mean
        mean = self.mean + d * other.n / n
        return Moments(n, mean, self.m2 + other.m2 + d * d * self.n * other.n / n)

    def minus(self, earlier: Moments) -> Moments:
        """The moments of the values added since ``earlier`` was a copy of this stream (undoes ``merge``).

        >>> m, first = Moments(), Moments()
        >>> for v in (1.0, 5.0, 2.0, 4.0, 3.0):
        ...     m.add(v)
        ...     if m.n == 2:
        ...         first = m.copy()
        >>> later = m.minus(first)
        >>> (later.n, later.mean, later.variance)
        (3, 3.0, 1.0)
        """
        n = self.n - earlier.n
        if n <= 0:
            return Moments()
        mean = (self.n * self.mean - earlier.n * earlier.mean) / n
        d = mean - earlier.mean
        return Moments(n, mean, max(0.0, self.m2 - earlier.m2 - d * d * earlier.n * n / self.n))

    def copy(self) -> Moments:
        return Moments(self.n, self.mean, self.m2)

    def to_state(self) -> list[float]:
        return [self.n, self.mean, self.m2]

    @classmethod
    def from_state(cls, s: list[float]) -> Moments:
        return cls(int(s[0]), float(s[1]), float(s[2]))
