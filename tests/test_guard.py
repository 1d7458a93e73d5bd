"""Post-promotion guard: trips on live evidence only, by bounds, for the watched version only."""

from __future__ import annotations

import random

from memabrad.promotion.guard import GuardSettings, PromotionGuard

S = GuardSettings(min_trajectories=200, reward_margin=0.05, max_error_rate_increase=0.02,
                  max_latency_increase_ms=250)


def _armed() -> PromotionGuard:
    g = PromotionGuard()
    g.arm("v2", "v1", reward=0.6, error_rate=0.03, latency_ms=700)
    return g


def _feed(g: PromotionGuard, n: int, reward: float, error_p: float, latency: float, version: str = "v2",
          seed: int = 0):
    rng = random.Random(seed)
    trip = None
    for _ in range(n):
        r = min(1.0, max(0.0, rng.gauss(reward, 0.2)))
        trip = trip or g.observe(version, r, rng.random() < error_p, rng.gauss(latency, 100), S)
    return trip


def test_a_version_that_keeps_its_promise_is_left_alone() -> None:
    assert _feed(_armed(), 5000, reward=0.6, error_p=0.03, latency=700) is None


def test_reward_far_below_the_promise_trips_and_names_the_rollback_target() -> None:
    trip = _feed(_armed(), 400, reward=0.4, error_p=0.03, latency=700)
    assert trip is not None and trip.rollback_to == "v1" and trip.version_id == "v2"
    assert any(r.startswith("live reward") for r in trip.reasons)


def test_error_rate_and_latency_regressions_trip() -> None:
    trip = _feed(_armed(), 400, reward=0.6, error_p=0.2, latency=700)
    assert trip is not None and any("error rate" in r for r in trip.reasons)
    trip = _feed(_armed(), 400, reward=0.6, error_p=0.03, latency=1500)
    assert trip is not None and any("latency" in r for r in trip.reasons)


def test_nothing_is_judged_before_min_trajectories() -> None:
    assert _feed(_armed(), 199, reward=0.0, error_p=1.0, latency=9000) is None


def test_only_the_watched_version_counts() -> None:
    g = _armed()
    assert _feed(g, 1000, reward=0.0, error_p=1.0, latency=9000, version="v1") is None
    assert g.reward is not None and g.reward.n == 0


def test_nothing_to_roll_back_to_stays_disarmed() -> None:
    g = PromotionGuard()
    g.arm("v1", None, reward=0.5, error_rate=0.0, latency_ms=0)
    assert not g.armed


def test_state_round_trip_continues_identically() -> None:
    a = _armed()
    _feed(a, 150, reward=0.4, error_p=0.03, latency=700, seed=1)
    b = PromotionGuard.from_state(a.to_state())
    ta = _feed(a, 100, reward=0.4, error_p=0.03, latency=700, seed=2)
    tb = _feed(b, 100, reward=0.4, error_p=0.03, latency=700, seed=2)
    assert ta == tb and ta is not None


def test_exploration_steps_are_not_judged() -> None:
    g = _armed()
    for _ in range(1000):  # explored routes (propensity eps/k) doing badly do not count against the version
        assert g.observe("v2", 0.0, True, 9000, S, propensity=0.2 / 6, n_candidates=6) is None
    assert g.reward is not None and g.reward.n == 0
    assert g.observe("v2", 0.6, False, 700, S, propensity=0.8 + 0.2 / 6, n_candidates=6) is None
    assert g.reward.n == 1
