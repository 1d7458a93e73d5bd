"""A route's AdaGrad step never moves an event's reward or latency prediction past its target.

AdaGrad's first step on a feature is ``eta / l1`` whatever the residual: a route meeting a task's words for
the first time would move its prediction by half an outcome spread past a residual of a tenth of one."""

from __future__ import annotations

import numpy as np
import pytest

from memabrad.learning.route_model import RouteModel
from memabrad.learning.route_parts import adagrad_step


def _change(resid: np.ndarray, hinted: bool = False) -> np.ndarray:
    """The prediction's change per head when fresh rows (three features) step once on ``resid``."""
    vals = np.array([0.6, 0.6, 0.5])
    rows = np.zeros((3, 6))
    adagrad_step(rows, vals, np.tile(resid, (3, 1)) if hinted else resid, 0.5, 0.0)
    return vals @ rows[:, :3]


@pytest.mark.parametrize("hinted", [False, True])
def test_a_small_residual_is_removed_and_not_passed(hinted: bool) -> None:
    change = _change(np.array([-0.1, -0.1, 0.05]), hinted)  # residual = prediction - target
    assert change[0] == pytest.approx(0.1) and change[2] == pytest.approx(-0.05)
    assert change[1] > 0.1  # the error head (log loss on the logit scale) is not capped


def test_a_large_residual_still_moves_by_the_step_it_did() -> None:
    change = _change(np.array([-2.0, -2.0, 2.0]))
    assert change[0] == pytest.approx(0.5) and change[2] == pytest.approx(-0.5)  # eta, one spread


def test_a_route_that_meets_a_tasks_words_for_the_first_time_does_not_overshoot() -> None:
    """Twenty events of one task at reward 0.55 around a route mean of 0.5: the prediction approaches 0.55 from
    below and never passes it (before, the first event's step moved it to 0.20 over the mean, four times too far)."""
    m = RouteModel()
    rng = np.random.default_rng(0)
    for _ in range(200):
        m.learn({int(rng.integers(100, 1000)): 1.0}, reward=float(rng.random() < 0.5), error=False, latency_s=0.1)
    x = {1: 0.6, 2: 0.8}
    seen = []
    for _ in range(20):
        m.learn(x, reward=m.reward_mean + 0.05, error=False, latency_s=0.1)
        seen.append(m.predict(x)[0] - m.reward_mean)
    assert max(seen) <= 0.05 + 1e-9
