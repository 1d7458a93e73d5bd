"""Text groups: untyped tasks that share a template or a long opening are grouped, boundedly."""

from __future__ import annotations

import random

import numpy as np

from memabrad.config import Config
from memabrad.evaluation.window_arrays import LoggedBatch
from memabrad.learning.batch import predict_all
from memabrad.learning.features import text_hashes
from memabrad.learning.learner import RouterLearner
from memabrad.learning.router import Router
from memabrad.learning.text_groups import TextGroups
from memabrad.wire.trajectory import Trajectory

WORDS = [f"w{i}" for i in range(400)]
OPENINGS = {fam: " ".join(random.Random(fam).choices(WORDS, k=300)) for fam in ("math", "law", "code")}
BEST = {"math": "large", "law": "small", "code": "tool"}


def _text(fam: str, rng: random.Random) -> str:
    return OPENINGS[fam] + " " + " ".join(rng.choices(WORDS, k=12))


def test_families_group_and_one_off_texts_do_not() -> None:
    rng = random.Random(1)
    g = TextGroups()
    names = {fam: [g.assign(text_hashes(_text(fam, rng))) for _ in range(5)] for fam in OPENINGS}
    for fam, got in names.items():
        assert got[0] is None  # the first of a family is only a seed
        assert len(set(got[1:])) == 1 and got[1] is not None, (fam, got)
    assert len({got[1] for got in names.values()}) == 3
    for _ in range(200):  # unrelated short texts: seeds, never groups
        assert g.assign(text_hashes(" ".join(rng.choices(WORDS, k=8)))) is None
    assert len(g) == 3
    assert g.match(text_hashes(_text("law", rng))) == names["law"][1]  # seeds overwritten, groups kept


def test_groups_are_bounded_and_never_change() -> None:
    g = TextGroups(max_groups=2, seeds=4)
    rng = random.Random(2)
    fams = [" ".join(rng.choices(WORDS, k=100)) for _ in range(4)]
    first = [None] * 4
    for _ in range(3):
        for i, f in enumerate(fams):
            got = g.assign(text_hashes(f + " " + " ".join(rng.choices(WORDS, k=5))))
            first[i] = first[i] or got
    assert len(g) == 2 and first[2] is None and first[3] is None  # full: later families stay ungrouped
    before = g.to_state(seeds=False)
    for f in fams:
        assert g.match(text_hashes(f + " again")) in (first[0], first[1], None)
    assert g.to_state(seeds=False) == before


def _trajectory(i: int, fam: str, route: str, rng: random.Random) -> Trajectory:
    reward = 0.9 if route == BEST[fam] else 0.2
    return Trajectory.model_validate({
        "schema_version": 1, "trajectory_id": f"t{i}", "router_id": "r", "occurred_at": "2026-01-01T00:00:00Z",
        "task": {"input": _text(fam, rng)}, "candidates": sorted(set(BEST.values())),
        "decision": {"route": route, "propensity": 1 / 3}, "outcome": {"reward": reward, "error": False,
                                                                      "latency_ms": 100.0}})


def test_learner_groups_untyped_traffic_and_saved_models_serve_by_group() -> None:
    rng = random.Random(3)
    learner = RouterLearner.new("r", Config())
    routes = sorted(set(BEST.values()))
    for i in range(900):
        learner.observe(_trajectory(i, rng.choice(list(OPENINGS)), rng.choice(routes), rng))
    groups = learner.challenger.text_groups
    assert len(groups) == 3
    held = [item for item in learner.window if item.text_group is not None]
    assert held and all(item.task_type is None and item.group == item.text_group for item in held)

    saved = Router.from_bytes(learner.snapshot().challenger.to_bytes())  # what a version serves with
    assert saved.text_groups.names == groups.names
    for fam, best in BEST.items():
        assert saved.choose({"input": _text(fam, rng)}, routes).route == best
    # the evaluation predicts the held-out items by their text groups: the group part is in its predictions
    batch = LoggedBatch.of(held, 1 << saved.hash_bits, routes)
    with_groups = predict_all(saved, batch.X, routes, batch.groups)["reward"]
    without = predict_all(saved, batch.X, routes, [None] * len(held))["reward"]
    assert not np.allclose(with_groups, without)
    assert batch.types == [None] * len(held)  # slices stay by task type


def test_typed_tasks_keep_their_type_and_switch_off() -> None:
    rng = random.Random(4)
    learner = RouterLearner.new("r", Config.model_validate({"router": {"text_groups": False}}))
    for i in range(200):
        learner.observe(_trajectory(i, rng.choice(list(OPENINGS)), "small", rng))
    assert len(learner.challenger.text_groups) == 0 and "text_groups" not in learner.to_state()
    assert "text_groups" not in learner.challenger.export_state()


def test_short_texts_are_never_grouped() -> None:
    g = TextGroups()
    short = text_hashes("reset my password please")
    assert [g.assign(short) for _ in range(3)] == [None, None, None] and not g.seeded() and len(g) == 0


def test_a_model_with_malformed_text_groups_is_refused() -> None:
    import pytest

    from memabrad.learning.router import ModelFormatError

    state = Router().export_state()
    for groups in ([[[1, 2]], [[3, 4]]], [[[999, 2]]]):  # more than its bound; a row beyond the space
        state["text_groups"] = {"format": "memabrad.text-groups/v1", "max_groups": 1, "groups": groups}
        with pytest.raises(ModelFormatError):
            Router.from_state(state)


def test_one_system_prompt_for_every_task_makes_one_group_not_many() -> None:
    rng = random.Random(6)
    system = " ".join(rng.choices(WORDS, k=300))
    g = TextGroups()
    got = {g.assign(text_hashes(system + " " + " ".join(rng.choices(WORDS, k=10)))) for _ in range(300)}
    assert len(g) == 1 and got == {None, g.names[0]}  # the group holds everything: its offset is the route mean's
