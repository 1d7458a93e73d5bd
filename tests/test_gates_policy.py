"""Tests of the promotion gates and policy: point and statistical modes, health, slices, dry run."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from memabrad.config import load_config
from memabrad.evaluation.compare import BenchmarkResult, Diagnostics, PolicyEstimate, SliceResult
from memabrad.evaluation.estimators import Interval
from memabrad.promotion.gates import interval_gate, point_gate
from memabrad.promotion.policy import PolicySettings, PromotionPolicy


def iv(value: float, low: float | None = None, high: float | None = None, n: int = 500) -> Interval:
    return Interval(value, value if low is None else low, value if high is None else high, n)


HEALTHY = Diagnostics(effective_sample_size=400.0, max_weight=4.0, match_rate=0.6, unsupported_tasks=0,
                      unsupported_routes=[])


def result(
    reward: Interval = iv(0.05, 0.03, 0.07),  # noqa: B008
    error: Interval = iv(0.0, -0.01, 0.01),  # noqa: B008
    latency: Interval = iv(10.0, -20.0, 40.0),  # noqa: B008
    *,
    task_count: int = 500,
    diag: Diagnostics = HEALTHY,
    slices: dict[str, SliceResult] | None = None,
) -> BenchmarkResult:
    est = PolicyEstimate("x", iv(0.5), iv(0.05), iv(800.0))
    return BenchmarkResult(task_count, task_count, 0, "dr", 0.95, 0, est, est,
                           {"reward": reward, "error_rate": error, "latency_ms": latency}, diag, slices or {})


STAT = PolicySettings(min_reward_delta=0.02, max_error_rate_increase=0.02, max_latency_increase_ms=250.0,
                      required_task_count=200, mode="statistical")
POINT = replace(STAT, mode="point")


# -- point mode -----------------------------------------------------------------------


def test_point_mode_reasons_are_exact() -> None:
    d = PromotionPolicy(POINT).decide(result(reward=iv(0.012, -0.5, 0.5)))
    assert d.verdict == "reject" and d.action == "rejected"
    assert d.reasons == ["reward_delta 0.012 < min 0.020"]
    d = PromotionPolicy(POINT).decide(result(reward=iv(0.03), error=iv(0.03), latency=iv(300.0)))
    assert d.reasons == ["error_rate_delta 0.030 > max 0.020", "latency_delta_ms 300 > max 250"]


def test_point_mode_passes_on_point_estimates_even_if_intervals_straddle() -> None:
    d = PromotionPolicy(POINT).decide(result(reward=iv(0.03, -0.1, 0.16), error=iv(0.01, -0.2, 0.2)))
    assert d.verdict == "promote" and d.action == "promoted"
    assert d.reasons == ["reward_delta 0.030 >= min 0.020", "error_rate_delta 0.010 <= max 0.020",
                         "latency_delta_ms 10 <= max 250", "task_count 500 >= min 200"]
    assert all(g.compared == "estimate" for g in d.gates.values())
    assert d.gates["reward_delta"].ci_low == -0.1  # the interval is still reported


def test_point_gate_boundaries_are_inclusive() -> None:
    assert point_gate("reward_delta", 0.02, 0.02, ">=").passed
    assert point_gate("error_rate_delta", 0.02, 0.02, "<=").passed
    assert not point_gate("reward_delta", math.nan, 0.02, ">=").passed
    assert point_gate("reward_delta", math.nan, 0.02, ">=").reason == "reward_delta could not be estimated"


def test_task_count_shortfall_rejects_in_point_mode() -> None:
    d = PromotionPolicy(POINT).decide(result(task_count=150))
    assert d.verdict == "reject"
    assert d.reasons == ["task_count 150 < min 200"]
    assert d.gates["task_count"].status == "fail"


# -- statistical mode -----------------------------------------------------------------


@pytest.mark.parametrize(("reward", "status"), [
    (iv(0.05, 0.03, 0.07), "pass"),          # lower bound 0.03 >= 0.02
    (iv(0.05, 0.01, 0.09), "inconclusive"),  # point passes but the lower bound does not
    (iv(0.0, -0.02, 0.015), "fail"),         # even the upper bound < 0.02
    (iv(0.03, 0.02, 0.04), "pass"),          # lower bound exactly at the threshold
])
def test_reward_gate_uses_the_lower_bound(reward: Interval, status: str) -> None:
    g = PromotionPolicy(STAT).decide(result(reward=reward)).gates["reward_delta"]
    assert (g.status, g.compared) == (status, "ci_low")


@pytest.mark.parametrize(("name", "kwargs", "status"), [
    ("error_rate_delta", {"error": iv(0.0, -0.01, 0.01)}, "pass"),
    ("error_rate_delta", {"error": iv(0.0, -0.01, 0.03)}, "inconclusive"),  # point ok, upper bound not
    ("error_rate_delta", {"error": iv(0.04, 0.03, 0.05)}, "fail"),
    ("latency_delta_ms", {"latency": iv(100.0, -50.0, 240.0)}, "pass"),
    ("latency_delta_ms", {"latency": iv(200.0, 150.0, 260.0)}, "inconclusive"),
    ("latency_delta_ms", {"latency": iv(300.0, 260.0, 340.0)}, "fail"),
])
def test_error_and_latency_gates_use_the_upper_bound(name: str, kwargs: dict[str, Interval], status: str) -> None:
    g = PromotionPolicy(STAT).decide(result(**kwargs)).gates[name]
    assert (g.status, g.compared) == (status, "ci_high")


def test_statistical_verdicts() -> None:
    policy = PromotionPolicy(STAT)
    ok = policy.decide(result())
    assert (ok.verdict, ok.action) == ("promote", "promoted")
    assert len(ok.reasons) == 4 and all(" >= " in r or " <= " in r for r in ok.reasons)
    unsure = policy.decide(result(reward=iv(0.03, 0.01, 0.05)))
    assert (unsure.verdict, unsure.action) == ("inconclusive", "inconclusive")
    assert unsure.reasons == ["reward_delta 0.030, 95% interval [0.010, 0.050] straddles min 0.020"]
    bad = policy.decide(result(reward=iv(0.03, 0.01, 0.05), error=iv(0.05, 0.03, 0.07)))
    assert (bad.verdict, bad.action) == ("reject", "rejected")
    assert bad.reasons[0] == "error_rate_delta 0.050, 95% interval [0.030, 0.070] > max 0.020"
    assert bad.reasons[1].startswith("reward_delta 0.030")  # the unsure gate is listed after the failure


def test_a_members_share_of_alpha_is_stated_as_it_is() -> None:
    """A portfolio member judged at 0.95 / 2 members' alpha states 97.5%, and a restart stream's 99.5% is not
    rounded to a 100% no interval can have."""
    g = interval_gate("reward_delta", 0.049, 0.012, 0.086, 0.01, ">=", 0.995, one_sided=True)
    assert g.reason == "reward_delta 0.049, one-sided 99.5% bounds [0.012, 0.086] >= min 0.010"
    assert "97.5% interval" in interval_gate("reward_delta", 0.03, 0.01, 0.05, 0.02, ">=", 0.975).reason


def test_interval_gate_that_cannot_be_estimated_is_inconclusive() -> None:
    g = interval_gate("reward_delta", math.nan, math.nan, math.nan, 0.02, ">=")
    assert g.status == "inconclusive"


def test_task_count_shortfall_is_inconclusive_in_statistical_mode() -> None:
    d = PromotionPolicy(STAT).decide(result(task_count=150))
    assert d.verdict == "inconclusive"
    assert d.reasons == ["task_count 150 < min 200 (collecting more)"]
    assert d.gates["task_count"].status == "inconclusive"
    assert d.gates["task_count"].to_dict()["passed"] is False


@pytest.mark.parametrize(("diag", "fragment"), [
    (replace(HEALTHY, effective_sample_size=12.0), "effective sample size 12.0 < min 50"),
    (replace(HEALTHY, max_weight=80.0), "importance weight 80.0 > max 50"),
    (replace(HEALTHY, unsupported_tasks=6, unsupported_routes=["tool.new"]),
     "challenger picks routes the logging policy never tried (tool.new) on 6 tasks"),
])
def test_unhealthy_estimator_is_inconclusive(diag: Diagnostics, fragment: str) -> None:
    d = PromotionPolicy(STAT).decide(result(diag=diag))
    assert d.verdict == "inconclusive" and d.action == "inconclusive"
    assert d.reasons == [f"estimator unhealthy: {fragment}"]
    assert d.health == [fragment]


def test_a_heavy_weight_is_healthy_once_the_progressive_evidence_has_seen_enough_for_it() -> None:
    """A matched weight of 120 (a route logged at 1/120) is unhealthy at 10,000 progressive trajectories (limit
    10,000 / 100 = 100) and healthy at 12,000; a fixed-n hold-out interval keeps the fixed limit, and
    ``trajectories_per_weight`` 0 restores it everywhere."""
    heavy = replace(HEALTHY, max_weight=120.0)
    small, large = (replace(result(task_count=n, diag=heavy), method="progressive") for n in (10000, 12000))
    policy = PromotionPolicy(STAT)
    assert policy.decide(small).health == ["importance weight 120.0 > max 100"]
    assert policy.decide(large).verdict == "promote"
    assert policy.decide(replace(large, challenger_diagnostics=replace(heavy, max_weight=121.0))).health == [
        "importance weight 121.0 > max 120"]
    fixed = PromotionPolicy(replace(STAT, trajectories_per_weight=0))
    assert fixed.decide(large).health == ["importance weight 120.0 > max 50"]
    assert policy.decide(result(task_count=12000, diag=heavy)).health == ["importance weight 120.0 > max 50"]
    assert policy.decide(replace(result(task_count=200, diag=replace(HEALTHY, max_weight=50.0)),
                                 method="progressive")).verdict == "promote"  # never below the fixed limit


def test_unsupported_share_at_the_limit_is_still_healthy() -> None:
    # 5 of 500 tasks = 1%, the limit; only more than that is unhealthy.
    d = PromotionPolicy(STAT).decide(result(diag=replace(HEALTHY, unsupported_tasks=5, unsupported_routes=["x"])))
    assert d.verdict == "promote"


def test_failed_gate_beats_unhealthy_estimator() -> None:
    d = PromotionPolicy(STAT).decide(result(reward=iv(-0.1, -0.2, 0.0), diag=replace(HEALTHY, max_weight=99.0)))
    assert d.verdict == "reject"


def _slice(n: int, delta: float) -> SliceResult:
    return SliceResult(n, iv(0.5), iv(0.5 + delta), iv(delta))


def test_slice_gate() -> None:
    settings = replace(STAT, slice_gate_enabled=True, slice_min_tasks=100, slice_max_regression=0.05)
    slices = {"coding": _slice(150, -0.08), "qa": _slice(200, 0.1), "tiny": _slice(20, -0.9)}
    d = PromotionPolicy(settings).decide(result(slices=slices))
    g = d.gates["slice_reward_delta"]
    assert g.status == "fail" and d.verdict == "reject"
    assert g.reason == "slice_reward_delta -0.080 < min -0.050 (slice coding)"
    ok = PromotionPolicy(settings).decide(result(slices={"coding": _slice(150, -0.04), "tiny": _slice(20, -0.9)}))
    assert ok.gates["slice_reward_delta"].status == "pass" and ok.verdict == "promote"
    none_big = PromotionPolicy(settings).decide(result(slices={"tiny": _slice(20, -0.9)}))
    assert none_big.gates["slice_reward_delta"].reason == "no slice has 100 tasks yet"
    assert "slice_reward_delta" not in PromotionPolicy(STAT).decide(result(slices=slices)).gates


@pytest.mark.parametrize(("kwargs", "note"), [
    ({"dry_run": True}, "dry run: nothing promoted"),
    ({"paused": True}, "promotions paused: nothing promoted"),
])
def test_dry_run_and_paused_change_the_action_not_the_verdict(kwargs: dict[str, bool], note: str) -> None:
    policy = PromotionPolicy(STAT)
    for res in (result(), result(reward=iv(-0.1, -0.2, 0.0)), result(task_count=10)):
        normal = policy.decide(res)
        dry = policy.decide(res, **kwargs)
        assert dry.verdict == normal.verdict
        assert dry.action == "dry_run"
        assert dry.reasons == [*normal.reasons, note]
        assert dry.would_promote == (normal.verdict == "promote")
        assert dry.gates_dict() == normal.gates_dict()


def test_gates_dict_has_value_threshold_passed() -> None:
    gates = PromotionPolicy(STAT).decide(result()).gates_dict()
    assert set(gates) == {"reward_delta", "error_rate_delta", "latency_delta_ms", "task_count"}
    assert gates["reward_delta"]["value"] == 0.05
    assert gates["reward_delta"]["threshold"] == 0.02
    assert gates["reward_delta"]["passed"] is True
    assert (gates["reward_delta"]["ci_low"], gates["reward_delta"]["ci_high"]) == (0.03, 0.07)
    assert gates["task_count"] == {"value": 500, "threshold": 200, "passed": True, "status": "pass",
                                   "compared": "estimate", "reason": "task_count 500 >= min 200"}


def test_gate_config_hash_changes_with_any_threshold() -> None:
    base = PromotionPolicy(STAT).decide(result()).gate_config_hash
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert PromotionPolicy(replace(STAT)).decide(result()).gate_config_hash == base
    for change in ({"min_reward_delta": 0.03}, {"max_error_rate_increase": 0.01},
                   {"max_latency_increase_ms": 100.0}, {"required_task_count": 201}, {"mode": "point"},
                   {"slice_gate_enabled": True}, {"min_effective_sample_size": 10.0}):
        assert PromotionPolicy(replace(STAT, **change)).decide(result()).gate_config_hash != base, change


def test_settings_from_config() -> None:
    cfg = load_config(None, {"MEMABRAD_PROMOTION__MIN_REWARD_DELTA": "0.05",
                             "MEMABRAD_PROMOTION__SLICE_GATE__ENABLED": "true",
                             "MEMABRAD_EVALUATION__MAX_IMPORTANCE_WEIGHT": "20"})
    s = PolicySettings.from_config(cfg.promotion, cfg.evaluation)
    assert (s.min_reward_delta, s.slice_gate_enabled, s.max_importance_weight) == (0.05, True, 20)
    assert s.config_hash() != PolicySettings().config_hash()
    default = load_config(None, {})
    assert PolicySettings.from_config(default.promotion, default.evaluation) == PolicySettings()
