"""Post-promotion guard: watch the new version's live trajectories, roll back if it disappoints.

After a promotion the guard is armed with the benchmark's estimate of the new version.
It then follows only trajectories whose ``decision.router_version`` is that version — the
agent's real experience of it. Once ``min_trajectories`` have arrived it compares:

- reward: the live mean's upper confidence bound below the promoted estimate minus
  ``reward_margin`` means the version is worse than promised;
- error rate: the live lower bound above the promoted estimate plus the error gate's
  allowance (``promotion.max_error_rate_increase``);
- latency: the live lower bound above the promoted estimate plus the latency allowance.

Any of these trips the guard: roll back to the version active before the promotion.
Using bounds (not point estimates) keeps false alarms near ``1 - confidence`` per check.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from memabrad.evaluation.estimators import z_value
from memabrad.promotion.gates import percent


@dataclass(frozen=True)
class GuardSettings:
    enabled: bool = True
    dry_run: bool = False
    min_trajectories: int = 500
    reward_margin: float = 0.05
    confidence: float = 0.95
    max_error_rate_increase: float = 0.02
    max_latency_increase_ms: float = 250.0

    @classmethod
    def from_config(cls, guard: Any, promotion: Any) -> GuardSettings:
        return cls(guard.enabled, guard.dry_run, guard.min_trajectories, guard.reward_margin, guard.confidence,
                   promotion.max_error_rate_increase, promotion.max_latency_increase_ms)


@dataclass
class _Moments:
    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, v: float) -> None:
        self.n += 1
        self.total += v
        self.squares += v * v

    def bounds(self, z: float) -> tuple[float, float, float]:
        mean = self.total / self.n
        var = max(0.0, (self.squares - self.n * mean * mean) / max(1, self.n - 1))
        half = z * math.sqrt(var / self.n)
        return mean, mean - half, mean + half


@dataclass(frozen=True)
class GuardTrip:
    """Why the guard fired, and where to roll back to."""

    version_id: str
    rollback_to: str
    reasons: list[str]
    observed: dict[str, float]


@dataclass
class PromotionGuard:
    """Armed per promoted version; lives in the router's learner state so it survives restarts.

    >>> g = PromotionGuard()
    >>> g.arm("v2", "v1", reward=0.8, error_rate=0.02, latency_ms=500)
    >>> s = GuardSettings(min_trajectories=50)
    >>> trips = [g.observe("v2", 0.2, False, 400, s) for _ in range(50)]
    >>> trips[-1].rollback_to, trips[-1].reasons[0][:22]
    ('v1', 'live reward 0.200 (95%')
    """

    version_id: str | None = None
    rollback_to: str | None = None
    expected_reward: float = 0.0
    expected_error_rate: float = 0.0
    expected_latency_ms: float = 0.0
    reward: _Moments | None = None
    error: _Moments | None = None
    latency: _Moments | None = None

    @property
    def armed(self) -> bool:
        return self.version_id is not None

    def arm(self, version_id: str, rollback_to: str | None, *, reward: float, error_rate: float,
            latency_ms: float) -> None:
        """Start watching ``version_id``; with nothing to roll back to, stay disarmed."""
        if rollback_to is None:
            self.disarm()
            return
        self.version_id, self.rollback_to = version_id, rollback_to
        self.expected_reward, self.expected_error_rate, self.expected_latency_ms = reward, error_rate, latency_ms
        self.reward, self.error, self.latency = _Moments(), _Moments(), _Moments()

    def disarm(self) -> None:
        self.version_id = self.rollback_to = None
        self.reward = self.error = self.latency = None

    def observe(self, router_version: str | None, reward: float, error: bool, latency_ms: float,
                s: GuardSettings, *, propensity: float | None = None, n_candidates: int = 1) -> GuardTrip | None:
        """Count one live trajectory; returns a trip when the evidence says roll back.

        Only the version's own (greedy) choices are judged: with epsilon-greedy serving, a route
        logged with propensity at most 1/len(candidates) was an exploration step, and the
        promised estimate is for the greedy policy. Greedy steps happen with the same
        probability in every context, so they are an unbiased sample of the greedy policy.
        """
        if not self.armed or router_version != self.version_id:
            return None
        if propensity is not None and n_candidates > 1 and propensity <= 1.0 / n_candidates:
            return None
        assert self.reward is not None and self.error is not None and self.latency is not None
        self.reward.add(reward)
        self.error.add(1.0 if error else 0.0)
        self.latency.add(latency_ms)
        if self.reward.n < s.min_trajectories:
            return None
        z = z_value(s.confidence)
        r, _, r_hi = self.reward.bounds(z)
        e, e_lo, _ = self.error.bounds(z)
        lat, lat_lo, _ = self.latency.bounds(z)
        pct = percent(s.confidence)
        reasons = []
        if r_hi < self.expected_reward - s.reward_margin:
            reasons.append(f"live reward {r:.3f} ({pct} upper bound {r_hi:.3f}) < promised {self.expected_reward:.3f}"
                           f" - margin {s.reward_margin:g}")
        if e_lo > self.expected_error_rate + s.max_error_rate_increase:
            reasons.append(f"live error rate {e:.3f} ({pct} lower bound {e_lo:.3f}) > promised "
                           f"{self.expected_error_rate:.3f} + {s.max_error_rate_increase:g}")
        if lat_lo > self.expected_latency_ms + s.max_latency_increase_ms:
            reasons.append(f"live latency {lat:.0f} ms ({pct} lower bound {lat_lo:.0f}) > promised "
                           f"{self.expected_latency_ms:.0f} + {s.max_latency_increase_ms:g} ms")
        if not reasons:
            return None
        assert self.version_id is not None and self.rollback_to is not None
        return GuardTrip(self.version_id, self.rollback_to, reasons,
                         {"trajectories": self.reward.n, "reward": r, "error_rate": e, "latency_ms": lat})

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> PromotionGuard:
        if not state:
            return cls()
        g = cls(**{k: v for k, v in state.items() if k not in ("reward", "error", "latency")})
        for k in ("reward", "error", "latency"):
            if state.get(k) is not None:
                setattr(g, k, _Moments(**state[k]))
        return g
