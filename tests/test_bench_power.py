"""The power benchmark's exact-outcome-model method runs through the product's gate code and is unbiased."""

from __future__ import annotations

import numpy as np
import pytest
from bench_modules import bench_module

from memabrad.promotion.policy import PolicySettings


@pytest.fixture(scope="module")
def power():  # noqa: ANN201 - the benchmark module
    with bench_module("power.py") as mod:
        yield mod


def test_exact_means_are_the_worlds_expected_outcomes(power) -> None:  # noqa: ANN001
    pool = power.build_pool(300)
    s = power.draw(pool, 500, np.random.default_rng(3))
    q = power.exact_means(pool, s)
    rows = np.arange(500)
    j = s.logged
    assert np.allclose(q[rows, j, 0], pool.reward[s.idx, j])
    assert np.allclose(q[rows, j, 1], pool.error[s.idx, j])
    assert np.allclose(q[rows, j, 2], pool.latency[s.idx, j])
    assert not np.isnan(q).any()


def test_a_repetition_runs_every_method_and_the_exact_model_is_unbiased(power) -> None:  # noqa: ANN001
    pool = power.build_pool(2000)
    cols, _ = power.better_policy(pool, 0.15)
    truth = tuple(c - lg for c, lg in zip(pool.value(cols), pool.value(None), strict=True))
    methods = (*power.METHODS, power.EXACT)
    rep = power.run_rep(pool, cols, truth, 3000, 1000, 7, PolicySettings(), methods)
    assert set(rep) == set(methods)
    exact = rep[power.EXACT]
    # a perfect outcome model leaves only the logged outcome's noise: the reward estimate is close to the truth
    assert abs(exact["last_estimate"]["reward"] - truth[0]) < 0.05
    assert exact["first_promotion"] is None or exact["first_promotion"] % 1000 == 0
