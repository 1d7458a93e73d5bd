"""The routes' shared contextual part: a rarely taken route learns from every trajectory what makes a
task easy or hard, and a router without it (or saved before it existed) behaves as before."""

from __future__ import annotations

import random

from memabrad.learning.router import Router
from memabrad.learning.shared_part import SharedWeight

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


def _train_desk(r: Router, n: int, seed: int = 5) -> None:
    """A general model taken 90% of the time, a route that follows it (``peer``: 0.1 better everywhere) and a
    ``tool`` that is its opposite (good exactly on the tasks the general model fails), 5% each."""
    rng = random.Random(seed)
    for _ in range(n):
        hard = rng.random() < 0.5
        u = rng.random()
        route = "general" if u < 0.9 else ("peer" if u < 0.95 else "tool")
        diff = -0.3 if hard else 0.3
        reward = (0.5 - diff if route == "tool" else 0.5 + diff + (0.1 if route == "peer" else 0.0))
        x = r.featurizer.featurize({"input": _text(rng, hard), "task_type": "code"})
        r.learn(x, route, propensity=0.9 if route == "general" else 0.05, reward=reward + rng.gauss(0.0, 0.1),
                error=False, latency_ms=100.0, group="code")


def test_each_route_earns_its_own_weight_on_the_shared_part() -> None:
    """A route whose outcomes follow the shared part takes it; one whose outcomes are its opposite does not,
    and learns which tasks are its own from its ~80 events without unlearning the shared part first."""
    learned, whole = Router(), Router()
    for name in ("general", "peer", "tool"):  # every route held at the shared part whole: as before beta
        whole._route(name).shared_weight = SharedWeight([1.0] * 3, [1e300] * 3)
    _train_desk(learned, 2000)
    _train_desk(whole, 2000)
    assert learned.routes["tool"].n < 100
    # on 20 seeds: beta peer 0.97-1.0, tool 0.0; tool spread -0.15 to -0.21 learned, 0.00 whole
    assert learned.routes["peer"].shared_weight.beta[0] > 0.5
    assert learned.routes["tool"].shared_weight.beta[0] < 0.1
    assert _spread(learned, "peer") > 0.45  # truly 0.6
    assert _spread(learned, "tool") < _spread(whole, "tool") - 0.1  # truly -0.6

    def tool_picked(r: Router) -> int:
        rng = random.Random(11)
        hard = [r.featurizer.featurize({"input": _text(rng, True), "task_type": "code"}) for _ in range(50)]
        return sum(r.best(x, ["general", "peer", "tool"], "code") == "tool" for x in hard)  # 0.8 against 0.2
    assert tool_picked(learned) >= 45  # on 20 seeds of this test: 46 to 50


def test_a_route_saved_before_it_weighed_the_shared_part_takes_it_whole() -> None:
    r = Router()
    _train(r, 300)
    state = r.export_state()
    assert all(len(s["shared_weight"]) == 6 for s in state["routes"].values())
    for s in state["routes"].values():
        del s["shared_weight"]
    back = Router.from_state(state)
    assert all(m.shared_weight.beta == [1.0, 1.0, 1.0] for m in back.routes.values())
