"""A lone contextual part's reward weight is solved at its error today, not its history's average."""

from __future__ import annotations

from memabrad.learning.route_model import RouteModel
from memabrad.learning.route_parts import stack, stack_now, with_prior
from memabrad.learning.router import Router
from memabrad.sim.helpdesk import ROUTES, HelpdeskWorkload


def _trained(typed: bool, n: int = 3000, seed: int = 2) -> Router:
    r = Router()
    for row in HelpdeskWorkload(seed=seed).generate(n):
        t = row["task"]
        x, group = r.task_features({"input": t["input"], **({"task_type": t["task_type"]} if typed else {})})
        d, o = row["decision"], row["outcome"]
        r.learn(x, d["route"], propensity=d["propensity"], reward=o["reward"], error=o["error"],
                latency_ms=o["latency_ms"], group=group)
    return r


def _sums(m: RouteModel) -> list[list[float]]:
    """The sums a route's weights are solved from: its own and its prior from the other routes'."""
    return with_prior(m.s_stack, m.prior)


def test_a_lone_contextual_part_weighs_more_than_its_history_says() -> None:
    r = _trained(typed=False)
    raised = 0
    for m in r.routes.values():
        assert len(m.groups) == 1  # no task types, short texts: one group
        plain, now = stack(_sums(m)[0]), m.lambdas()[0]
        assert now[1] >= plain[1]
        raised += now[1] > plain[1] + 0.05
        assert m.lambdas()[1:] == [stack(s) for s in _sums(m)[1:]]  # only the reward head's
    assert raised >= 3


def test_with_task_groups_the_weights_are_the_plain_ones() -> None:
    r = _trained(typed=True, n=1500)
    for m in r.routes.values():
        assert len(m.groups) > 1
        assert m.lambdas() == [stack(s) for s in _sums(m)]


def test_noise_in_the_product_of_part_and_target_is_not_magnified() -> None:
    # f*t of 1 with a standard error of 2 (f*f 4, residual variance 1): as likely noise as not
    assert stack_now([0.0, 0.0, 4.0, 0.0, 1.0], 5000, 1.0) == stack([0.0, 0.0, 4.0, 0.0, 1.0])
    # the same f*t with a tiny standard error: the noise energy (3) is divided by nearly H_5000 (9.09)
    assert stack_now([0.0, 0.0, 4.0, 0.0, 1.0], 5000, 0.001)[1] > 0.7


def test_a_model_saved_before_keeps_its_weights_and_the_round_trip_keeps_the_correction() -> None:
    r = _trained(typed=False, n=1200)
    back = Router.from_state(r.export_state())
    assert back.history_correction and all(m.history_correction for m in back.routes.values())
    rows = HelpdeskWorkload(seed=9).generate(30)
    for row in rows:
        x, g = r.task_features({"input": row["task"]["input"]})
        assert back.scores(x, list(ROUTES), g) == r.scores(x, list(ROUTES), g)
    state = r.export_state()
    del state["stacking_history"]
    old = Router.from_state(state)
    assert not old.history_correction
    assert all(m.lambdas() == [stack(s) for s in _sums(m)] for m in old.routes.values())
    assert "stacking_history" not in old.export_state()
    assert r.clone().history_correction and all(m.history_correction for m in r.clone().routes.values())
