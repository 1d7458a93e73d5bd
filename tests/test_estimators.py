"""Hand-computed values of the off-policy estimators, their intervals and the effective sample size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memabrad.evaluation.compare import resolve_estimator
from memabrad.evaluation.estimators import (
    dr_influence,
    effective_sample_size,
    influence,
    ips_influence,
    mean_interval,
    snips_influence,
    z_value,
)

# Four logged tasks: outcome y, logging propensity p of the logged route, and whether the
# evaluated policy picks the logged route (match).
Y = np.array([1.0, 0.5, 0.0, 0.8])
P = np.array([0.5, 0.25, 0.8, 0.4])
M = np.array([True, False, True, True])
# Outcome-model predictions for the policy's route (q_pi) and for the logged route (q_log).
Q_PI = np.array([0.7, 0.6, 0.1, 0.5])
Q_LOG = np.array([0.7, 0.2, 0.2, 0.6])


def test_ips_by_hand() -> None:
    # phi = match * y / p = [1/0.5, 0, 0/0.8, 0.8/0.4] = [2, 0, 0, 2]; mean = 4/4 = 1.0
    phi = ips_influence(Y, P, M)
    assert phi.tolist() == pytest.approx([2.0, 0.0, 0.0, 2.0])
    assert float(phi.mean()) == pytest.approx(1.0)
    assert influence("ips", Y, P, M).tolist() == phi.tolist()


def test_snips_by_hand() -> None:
    # w = match / p = [2, 0, 1.25, 2.5]; sum w = 5.75; sum w*y = 2 + 0 + 0 + 2 = 4
    # SNIPS = 4 / 5.75 = 0.695652...
    value = 4.0 / 5.75
    phi = snips_influence(Y, P, M)
    assert float(phi.mean()) == pytest.approx(value, abs=1e-12)
    # Linearised influence: value + w * (y - value) / mean(w), mean(w) = 5.75 / 4 = 1.4375
    w = np.array([2.0, 0.0, 1.25, 2.5])
    assert phi.tolist() == pytest.approx((value + w * (Y - value) / 1.4375).tolist())
    # Task 2 (no match) contributes exactly the point estimate.
    assert phi[1] == pytest.approx(value)


def test_snips_without_any_match_is_nan() -> None:
    phi = snips_influence(Y, P, np.zeros(4, bool))
    assert np.isnan(phi).all()
    assert math.isnan(mean_interval(phi).value)


def test_dr_by_hand() -> None:
    # phi = q_pi + match * (y - q_log) / p
    #   task 1: 0.7 + (1.0 - 0.7) / 0.5 = 0.7 + 0.6   = 1.3
    #   task 2: 0.6 (no match)                        = 0.6
    #   task 3: 0.1 + (0.0 - 0.2) / 0.8 = 0.1 - 0.25  = -0.15
    #   task 4: 0.5 + (0.8 - 0.6) / 0.4 = 0.5 + 0.5   = 1.0
    # mean = (1.3 + 0.6 - 0.15 + 1.0) / 4 = 2.75 / 4 = 0.6875
    phi = dr_influence(Y, P, M, Q_PI, Q_LOG)
    assert phi.tolist() == pytest.approx([1.3, 0.6, -0.15, 1.0])
    assert float(influence("dr", Y, P, M, Q_PI, Q_LOG).mean()) == pytest.approx(0.6875)


def test_dr_with_a_perfect_model_is_the_model_and_with_a_zero_model_is_ips() -> None:
    assert dr_influence(Y, P, M, Q_PI, Y).tolist() == pytest.approx(Q_PI.tolist())
    zero = np.zeros(4)
    assert dr_influence(Y, P, M, zero, zero).tolist() == pytest.approx(ips_influence(Y, P, M).tolist())


def test_on_policy_is_the_plain_mean_of_the_logged_outcomes() -> None:
    # (1.0 + 0.5 + 0.0 + 0.8) / 4 = 0.575, whatever the propensities and matches
    phi = influence("on_policy", Y, P, np.zeros(4, bool))
    assert phi.tolist() == Y.tolist()
    assert float(phi.mean()) == pytest.approx(0.575)


def test_influence_rejects_unknown_estimators_and_dr_without_a_model() -> None:
    with pytest.raises(ValueError, match="dr needs"):
        influence("dr", Y, P, M)
    with pytest.raises(ValueError, match="unknown estimator"):
        influence("magic", Y, P, M)


def test_mean_interval_formula() -> None:
    # phi = [1, 2, 3, 4]: mean 2.5; sample variance = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3
    # half width = z(0.95) * sqrt(5/3) / sqrt(4) = 1.959964 * 1.290994 / 2 = 1.265148
    iv = mean_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    half = 1.959963984540054 * math.sqrt(5 / 3) / 2
    assert (iv.value, iv.n) == (2.5, 4)
    assert iv.ci_low == pytest.approx(2.5 - half, abs=1e-12)
    assert iv.ci_high == pytest.approx(2.5 + half, abs=1e-12)
    assert iv.half_width == pytest.approx(half, abs=1e-12)
    # 90%: z = 1.644854
    iv90 = mean_interval(np.array([1.0, 2.0, 3.0, 4.0]), 0.90)
    assert iv90.half_width == pytest.approx(1.6448536269514722 * math.sqrt(5 / 3) / 2, abs=1e-12)


def test_mean_interval_edge_cases() -> None:
    empty = mean_interval(np.array([]))
    assert empty.n == 0 and math.isnan(empty.value) and math.isnan(empty.ci_low)
    one = mean_interval(np.array([0.3]))
    assert (one.value, one.ci_low, one.ci_high, one.n) == (0.3, 0.3, 0.3, 1)
    const = mean_interval(np.full(10, 0.7))
    assert const.ci_low == pytest.approx(0.7) and const.ci_high == pytest.approx(0.7)


def test_z_values() -> None:
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_value(0.99) == pytest.approx(2.575829, abs=1e-6)


def test_effective_sample_size_by_hand() -> None:
    # w = [2, 0, 1.25, 2.5]: (sum w)^2 / sum w^2 = 5.75^2 / (4 + 1.5625 + 6.25) = 33.0625 / 11.8125
    assert effective_sample_size(P, M) == pytest.approx(33.0625 / 11.8125)
    # Equal weights: ESS is the number of matches, whatever the weight.
    assert effective_sample_size(np.full(5, 0.1), np.array([1, 1, 1, 0, 0], bool)) == pytest.approx(3.0)
    assert effective_sample_size(P, np.zeros(4, bool)) == 0.0


def test_resolve_estimator() -> None:
    from memabrad.evaluation.benchmark import LoggedItem

    known = LoggedItem("a", {}, ("x",), "x", 0.5, False, 1.0, False, 1.0, None)
    imputed = LoggedItem("b", {}, ("x",), "x", 1.0, True, 1.0, False, 1.0, None)
    assert resolve_estimator("auto", [known, imputed]) == "dr"
    assert resolve_estimator("auto", [imputed]) == "snips"
    assert resolve_estimator("auto", []) == "dr"
    assert resolve_estimator("ips", [known]) == "ips"
