"""Held-out trajectories are learned once they leave the benchmark window, and never while in it."""

from __future__ import annotations

import json

import pytest

from memabrad.config import Config, load_config
from memabrad.learning.learner import RouterLearner
from memabrad.learning.window import LoggedItem
from memabrad.sim import Simulator
from memabrad.wire.trajectory import Trajectory


def _cfg(**env: str) -> Config:
    return load_config(None, {f"MEMABRAD_{k}": v for k, v in env.items()})


@pytest.fixture(scope="module")
def trajectories() -> list[Trajectory]:
    return [Trajectory.model_validate(r) for r in Simulator(seed=11).generate(2500)]


def _learn(learner: RouterLearner, ts: list[Trajectory]) -> RouterLearner:
    for t in ts:
        learner.observe(t)
    return learner


def _routes_n(learner: RouterLearner) -> int:
    return sum(m.n for m in learner.challenger.routes.values())


def test_a_held_out_trajectory_is_learned_when_it_leaves_the_window(trajectories: list[Trajectory]) -> None:
    cfg = _cfg(EVALUATION__WINDOW_SIZE="100")
    learner = RouterLearner.new("default", cfg)
    held: list[str] = []
    for t in trajectories:
        if learner.observe(t):
            held.append(t.trajectory_id)
    c = learner.counters
    assert c.benchmarked == len(held) > 300
    assert c.learned_after_holdout == len(held) - 100  # all but the window's hundred
    assert c.trained == len(trajectories) - 100 == _routes_n(learner)
    assert learner.span.count == c.trained
    assert [i.trajectory_id for i in learner.window] == held[-100:]  # still never learned: the newest held out


def test_without_learning_held_out_they_are_withheld_for_good(trajectories: list[Trajectory]) -> None:
    learner = _learn(RouterLearner.new("default", _cfg(EVALUATION__WINDOW_SIZE="100",
                                                        EVALUATION__LEARN_HELD_OUT="false")), trajectories)
    c = learner.counters
    assert c.learned_after_holdout == 0
    assert c.trained == len(trajectories) - c.benchmarked == _routes_n(learner)


def test_a_held_out_trajectory_teaches_what_it_would_have_on_arrival(trajectories: list[Trajectory]) -> None:
    """Its features, group, hint and novelty as they were when it arrived: the same step as a trained one."""
    learner = _learn(RouterLearner.new("default", _cfg(EVALUATION__WINDOW_SIZE="1")), trajectories[:400])
    item = learner.window.snapshot()[0]
    twin = RouterLearner.from_state(json.loads(json.dumps(learner.to_state())), _cfg(EVALUATION__WINDOW_SIZE="1"))
    assert item.case_key is not None
    novel = not twin.case_index.learned_routes.learned(item.case_key, item.route)
    learner.learn_after_holdout(item)
    twin.challenger.learn(item.x, item.route, propensity=item.propensity, reward=item.reward, error=item.error,
                          latency_ms=item.latency_ms, group=item.group, novel=novel, hint_key=item.hint_key)
    assert learner.challenger.fingerprint() == twin.challenger.fingerprint()
    assert learner.case_index.learned_routes.learned(item.case_key, item.route)  # and the route has learned it now


def test_window_items_keep_case_key_and_hint_through_state() -> None:
    item = LoggedItem("t", {3: 0.5, 9: 1.0}, ("a", "b"), "a", 0.25, False, 1.0, False, 12.0, None, "~g", "t k", 9)
    back = LoggedItem.from_state(json.loads(json.dumps(item.to_state())))
    assert (back.case_key, back.hint_key, back.text_group, dict(back.x)) == ("t k", 9, "~g", {3: 0.5, 9: 1.0})
    plain = LoggedItem("t", {3: 0.5}, ("a",), "a", 1.0, False, 0.0, True, 1.0, "qa")
    assert plain.to_state()[-1] == "qa"  # states without them are written as before
    assert LoggedItem.from_state(plain.to_state()) == LoggedItem.from_state(json.loads(json.dumps(plain.to_state())))


def test_a_smaller_configured_window_learns_what_no_longer_fits(trajectories: list[Trajectory]) -> None:
    big = _cfg(EVALUATION__WINDOW_SIZE="500")
    learner = _learn(RouterLearner.new("default", big), trajectories[:1500])
    assert learner.counters.learned_after_holdout == 0
    n = len(learner.window)
    small = RouterLearner.from_state(json.loads(json.dumps(learner.to_state())), _cfg(EVALUATION__WINDOW_SIZE="50"))
    assert len(small.window) == 50 and small.window.size == 50
    assert small.counters.learned_after_holdout == n - 50
    assert small.counters.trained == learner.counters.trained + n - 50 == _routes_n(small)


def test_checkpoint_then_continue_equals_uninterrupted_with_evictions(trajectories: list[Trajectory]) -> None:
    cfg = _cfg(EVALUATION__WINDOW_SIZE="60")
    straight = _learn(RouterLearner.new("default", cfg), trajectories)
    half = _learn(RouterLearner.new("default", cfg), trajectories[:1200])
    resumed = _learn(RouterLearner.from_state(json.loads(json.dumps(half.to_state())), cfg), trajectories[1200:])
    assert straight.counters.learned_after_holdout > 300
    assert resumed.to_state() == straight.to_state()


def test_a_window_item_kept_without_its_hint_finds_it_in_its_features(trajectories: list[Trajectory]) -> None:
    """Windows saved before items noted their hint: the hint feature is found among the item's features."""
    learner = _learn(RouterLearner.new("default", _cfg()), trajectories[:1500])
    feat = learner.challenger.featurizer
    items = learner.window.snapshot()
    assert sum(i.hint_key is not None for i in items) > 50 and sum(i.hint_key is None for i in items) > 50
    routes = sorted(learner.supported_routes())  # a hint names a route that did well on a similar task: offered or not
    assert all(feat.hint_key_in(i.x, (*i.candidates, *routes)) == i.hint_key for i in items)
