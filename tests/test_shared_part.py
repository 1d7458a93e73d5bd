"""The routes' shared contextual part: a rarely taken route learns from every trajectory what makes a
task easy or hard, and a router without it (or saved before it existed) behaves as before."""

from __future__ import annotations

import random

from memabrad.learning.router import Router

EASY = ["rename", "typo", "format", "spelling"]
HARD = ["deadlock", "proof", "recurrence", "concurrency"]
FILLER = [f"w{i}" for i in range(300)]


def _text(rng: random.Random, hard: bool) -> str:
    """A task whose difficulty only its one signal word tells; the rest is filler, new text every time."""
    words = rng.sample(FILLER, 6) + [rng.choice(HARD if hard else EASY)]
    rng.shuffle(words)
    return " ".join(words)


def _train(r: Router, n: int, seed: int = 3) -> None:
    """``common`` is taken 97% of the time; on every route a hard task scores 0.6 less than an easy one."""
    rng = random.Random(seed)
    for _ in range(n):
        hard = rng.random() < 0.5
        route = "common" if rng.random() < 0.97 else "rare"
        base = 0.5 if route == "common" else 0.7
        reward = base + (-0.3 if hard else 0.3) + rng.gauss(0.0, 0.1)
        x = r.featurizer.featurize({"input": _text(rng, hard), "task_type": "code"})
        r.learn(x, route, propensity=0.97 if route == "common" else 0.03, reward=reward, error=False,
                latency_ms=100.0, group="code")


def _spread(r: Router, route: str) -> float:
    """Predicted reward of ``route`` on fresh easy tasks minus on fresh hard ones (truly 0.6)."""
    rng = random.Random(99)

    def mean(hard: bool) -> float:
        xs = [r.featurizer.featurize({"input": _text(rng, hard), "task_type": "code"}) for _ in range(50)]
        return sum(r.predict_outcome(x, route, "code").reward for x in xs) / len(xs)
    return mean(False) - mean(True)


def test_a_rare_route_learns_difficulty_from_every_trajectory() -> None:
    shared, alone = Router(), Router(shared=None)
    _train(shared, 1500)
    _train(alone, 1500)
    assert shared.routes["rare"].n < 100
    assert _spread(shared, "rare") > 0.35  # truly 0.6
    assert _spread(shared, "rare") > _spread(alone, "rare") + 0.15
    # rare is truly 1.0 on easy tasks and 0.4 on hard ones: its predictions are closer to that with sharing
    def miss(r: Router) -> float:
        rng = random.Random(7)
        out = 0.0
        for hard, truth in ((False, 1.0), (True, 0.4)):
            xs = [r.featurizer.featurize({"input": _text(rng, hard), "task_type": "code"}) for _ in range(50)]
            out += abs(sum(r.predict_outcome(x, "rare", "code").reward for x in xs) / len(xs) - truth)
        return out
    assert miss(shared) < miss(alone) - 0.1


def test_a_router_without_it_exports_and_loads_as_before() -> None:
    r = Router(shared=None)
    _train(r, 200)
    state = r.export_state()
    assert "shared" not in state
    back = Router.from_state(state)
    assert back.shared is None
    x = r.featurizer.featurize({"input": _text(random.Random(1), True), "task_type": "code"})
    assert back.scores(x, ["common", "rare"], "code") == r.scores(x, ["common", "rare"], "code")


def test_the_shared_part_survives_export_and_clone() -> None:
    r = Router()
    _train(r, 300)
    x = r.featurizer.featurize({"input": _text(random.Random(2), False), "task_type": "code"})
    for twin in (Router.from_state(r.export_state()), Router.from_bytes(r.to_bytes()), r.clone()):
        assert twin.shared is not None and len(twin.shared) == len(r.shared)
        assert twin.scores(x, ["common", "rare"], "code") == r.scores(x, ["common", "rare"], "code")
