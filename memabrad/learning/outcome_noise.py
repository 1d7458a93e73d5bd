"""How noisy a router's rewards are, measured on tasks a route learns again; it sizes the step on a task new to a route.

A route's contextual part takes normalised AdaGrad steps of one share ``eta`` (``route_parts.adagrad_step``),
and no single share serves every workload (``docs/benchmarks.md``, "A bolder step"; "Noise-sized steps"). Where a
reward is a fixed function of the task (a judged benchmark prompt, a label), one event says all there is
to know about that task, and a route tried 1 % of the time learns fastest by fitting each of its events, as
Vowpal Wabbit's importance-weighted updates do (an event of weight ``1/p`` moves its prediction nearly all the
way). Where rewards are noisy (a tool right 80 % of the time, correctness near chance), the same bold step
chases the noise: every workload of that kind lost with it.

The router can tell which traffic it has from its own log. When a route learns a task it has learned before,
the two rewards differ only by noise, so half their squared difference estimates the noise variance; its share
of the rewards' variance ``rho`` gives the *boldness*::

    b = max(0, 1 - rho / NOISE_LIMIT) * pairs / (pairs + PAIRS_PRIOR)

1 where repeats always agree, 0 where noise is a quarter of the variance or more, and 0 while no task has
recurred (traffic without repeats learns exactly as before). An event new to its route then steps at
``step_share(eta, b, propensity)``. A repeat keeps ``eta``: re-fitting a task at full share on every visit
chases whichever of its conflicting neighbours came last (a small dataset seen many times lost 0.04 so).

>>> n = OutcomeNoise()
>>> n.boldness(0.25)  # no repeat yet
0.0
>>> for _ in range(50):
...     n.add(1.0, 1.0)  # repeats that agree
>>> n.boldness(0.25)
0.5
>>> noisy = OutcomeNoise()
>>> for r in (0.0, 1.0) * 100:
...     noisy.add(r, 1.0 - r)
>>> noisy.boldness(0.25)  # noise variance 0.5 against a variance of 0.25
0.0
>>> round(step_share(0.5, 1.0, 0.01), 6), step_share(0.5, 0.0, 0.01), step_share(0.5, 1.0, 1.0)
(1.0, 0.5, 0.5)
>>> OutcomeNoise.from_state(n.to_state()) == n, OutcomeNoise.from_state(None)
(True, None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOISE_LIMIT = 0.25  # the noise's share of the rewards' variance at which the step is no bolder than ``eta``
PAIRS_PRIOR = 50.0  # repeats it takes to be half sure of the noise's share


@dataclass
class OutcomeNoise:
    """Half the summed squared differences of a route's rewards on the same task, over how many such pairs."""

    pairs: float = 0.0
    half_sq: float = 0.0

    def add(self, reward: float, previous: float) -> None:
        """A route learned a task again: ``reward`` now, ``previous`` the last time."""
        d = reward - previous
        self.pairs += 1.0
        self.half_sq += 0.5 * d * d

    def boldness(self, variance: float) -> float:
        """How far toward an importance-weighted step a new task's step goes, in [0, 1] (``variance``: the rewards')."""
        if self.pairs <= 0.0 or variance <= 0.0:
            return 0.0
        rho = self.half_sq / self.pairs / variance
        return max(0.0, 1.0 - rho / NOISE_LIMIT) * self.pairs / (self.pairs + PAIRS_PRIOR)

    def step(self, eta: float, propensity: float, variance: float, novel: bool, reward: float,
             previous: float | None) -> float | None:
        """One event a route learns: counts its pair if the route learned the task before (``previous``: the reward
        then), and returns the step share of a task new to the route (None: ``eta``, as for every repeat)."""
        if previous is not None:
            self.add(reward, previous)
        if not novel:
            return None
        bold = self.boldness(variance)
        return step_share(eta, bold, propensity) if bold > 0.0 else None

    def to_state(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "half_sq": self.half_sq}

    @classmethod
    def from_state(cls, s: Any) -> OutcomeNoise | None:
        """None for a model saved before the noise was measured: it learns as it did."""
        if not s:
            return None
        return cls(float(s["pairs"]), float(s["half_sq"]))

    def copy(self) -> OutcomeNoise:
        return OutcomeNoise(self.pairs, self.half_sq)


def step_share(eta: float, boldness: float, propensity: float) -> float:
    """The step share of an event new to its route: ``eta`` moved ``boldness`` of the way toward the share an
    event of importance weight ``1/propensity`` would take as that many events at ``eta`` (``1 - (1 - eta) ** w``:
    nearly 1 for a route tried 1 % of the time, ``eta`` for one always taken)."""
    w = 1.0 / max(propensity, 1e-6)
    return eta + boldness * ((1.0 - (1.0 - eta) ** w) - eta)
