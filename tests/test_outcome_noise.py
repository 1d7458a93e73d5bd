"""Noise-sized steps: where a route learning a task again gets the reward it got before, the rewards are a fixed
function of the task, and a task new to a rarely tried route is fitted nearly whole (as an importance-weighted
update would); where repeats disagree, or no task recurs, every step is the one the router always took."""

from __future__ import annotations

import json
import random

from memabrad.learning.features import Featurizer
from memabrad.learning.outcome_noise import OutcomeNoise
from memabrad.learning.route_model import own_reward_part
from memabrad.learning.router import Router

ROUTES = ["main", "rare"]


def _task(i: int) -> dict[str, str]:
    return {"input": f"question {i} about topic {i % 17} with detail {i % 5}"}


def _train(router: Router, noisy: bool, seed: int = 3) -> None:
    """A pool of 40 tasks seen many times on the main route (p 0.9): repeats measure the rewards' noise."""
    rng = random.Random(seed)
    last: dict[int, float] = {}
    for _ in range(2000):
        i = rng.randrange(40)
        reward = float(rng.random() < 0.5) if noisy else float(i % 3 == 0)
        router.learn(router.featurizer.featurize(_task(i)), "main", propensity=0.9, reward=reward, error=False,
                     latency_ms=10.0, novel=i not in last, previous_reward=last.get(i))
        last[i] = reward


def _rare_part_after_one_event(router: Router) -> tuple[float, float]:
    """The rare route's own contextual reward part of a task before and after it learns that task (new to it)."""
    x = Featurizer().featurize(_task(1000))
    for j in range(30):  # the rare route's mean settles near 0
        router.learn(Featurizer().featurize(_task(2000 + j)), "rare", propensity=0.01, reward=0.0, error=False,
                     latency_ms=10.0)
    model = router.routes["rare"]
    before = own_reward_part(model, x)
    router.learn(x, "rare", propensity=0.01, reward=1.0, error=False, latency_ms=10.0)
    return before, own_reward_part(model, x)


def test_repeats_that_agree_make_a_rare_routes_new_task_step_nearly_whole() -> None:
    bold, plain = Router(), Router(noise=None)
    _train(bold, noisy=False)
    _train(plain, noisy=False)
    assert bold.noise is not None and bold.noise.pairs > 1900
    assert bold.noise.boldness(bold.scale.reward.variance) > 0.95
    b0, b1 = _rare_part_after_one_event(bold)
    p0, p1 = _rare_part_after_one_event(plain)
    assert b1 - b0 > 1.5 * (p1 - p0) > 0.0


def test_repeats_that_disagree_leave_every_step_as_it_was() -> None:
    noisy, plain = Router(), Router(noise=None)
    _train(noisy, noisy=True)
    _train(plain, noisy=True)
    assert noisy.noise is not None and noisy.noise.boldness(noisy.scale.reward.variance) == 0.0
    assert _rare_part_after_one_event(noisy) == _rare_part_after_one_event(plain)
    got, want = noisy.export_state(), plain.export_state()
    assert got.pop("outcome_noise")["pairs"] > 1900
    assert got == want


def test_the_noise_is_kept_with_the_model_and_a_model_saved_before_steps_as_it_did() -> None:
    r = Router()
    _train(r, noisy=False)
    state = json.loads(json.dumps(r.export_state()))
    twin = Router.from_state(state)
    assert twin.noise == r.noise and twin.clone().noise == r.noise
    del state["outcome_noise"]
    old = Router.from_state(state)
    assert old.noise is None and "outcome_noise" not in old.export_state()
    assert OutcomeNoise.from_state(None) is None
