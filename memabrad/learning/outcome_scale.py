"""The spread of the outcomes a router learns from, which sets the size of its contextual steps.

A route's contextual part takes normalised AdaGrad steps (``route_parts.adagrad_step``): the first
update on a fresh example moves the prediction by ``eta``, later ones by less. Measured in the
outcome's own units, that is a different learner for every reward scale: a reward in cents (0 to
100) would need hundreds of steps to move a prediction by one typical residual, and one in dollars
of cost (0 to 0.01) would be thrown a hundred residuals past the target at every step, so the
stacking weight would rightly drop the contextual part as noise. With rewards logged as 0.01 r or
100 r - 50, the simulator lost 0.025 of true value at 20,000 trajectories for that alone, and the
*tokens* workload everything it had learned from its numbers (0.759 -> 0.700, its best single route).

So each head's residual is divided by its outcome's *spread* before the step and the step is
multiplied back: the steps are a share of a typical residual whatever the units, and a model's
weights stay in the outcome's units (serving and every saved model read them as before). The
spread is ``SPREAD_SDS`` standard deviations of the outcomes learned so far (Welford's moments,
exact to restore): at most 1 for a reward in [0, 1], the contract's recommended range, so there
``eta`` keeps its meaning. The error head learns on the logit scale, which has no units. Before two
outcomes have been seen, or while they are all equal, a head has no spread and its contextual part
does not step (there is no residual to learn from yet).

>>> s = OutcomeScale()
>>> s.steps().tolist()
[0.0, 1.0, 0.0]
>>> for r, lat in ((0.0, 1.0), (1.0, 3.0), (0.5, 2.0)):
...     s.add(r, lat)
>>> [round(v, 3) for v in s.steps().tolist()]
[1.0, 1.0, 2.0]
>>> OutcomeScale.from_state(s.to_state()) == s
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memabrad.stats.moments import Moments

SPREAD_SDS = 2.0  # an outcome's spread, in standard deviations: 1 at most for a reward in [0, 1]


@dataclass
class OutcomeScale:
    """Running moments of the rewards and of the latencies (seconds) a router has learned from."""

    reward: Moments = field(default_factory=Moments)
    latency: Moments = field(default_factory=Moments)

    def add(self, reward: float, latency_s: float) -> None:
        self.reward.add(reward)
        self.latency.add(latency_s)

    def steps(self) -> np.ndarray:
        """Per head (reward, error, latency), what a residual is measured in: 0 (no step) for the reward or
        latency head before two outcomes, or while its outcomes have all been equal."""
        return np.array([_spread(self.reward), 1.0, _spread(self.latency)])

    def means(self) -> tuple[float, float] | None:
        """The mean reward and latency so far (None before the first outcome)."""
        return (self.reward.mean, self.latency.mean) if self.reward.n else None

    def to_state(self) -> dict[str, Any]:
        return {"reward": self.reward.to_state(), "latency": self.latency.to_state()}

    @classmethod
    def from_state(cls, s: Any) -> OutcomeScale:
        """A model saved before it kept its outcomes' spread starts one afresh."""
        if not s:
            return cls()
        return cls(Moments.from_state(s["reward"]), Moments.from_state(s["latency"]))

    def copy(self) -> OutcomeScale:
        return OutcomeScale(self.reward.copy(), self.latency.copy())


def _spread(m: Moments) -> float:
    var = m.variance
    return SPREAD_SDS * math.sqrt(var) if var > 0.0 else 0.0
