"""A task is its text and its fields: agents that send one fixed text and put the context in numbers."""

from __future__ import annotations

import random

from memabrad.config import load_config
from memabrad.learning.case_index import CaseIndex
from memabrad.learning.features import TaskView
from memabrad.learning.learner import RouterLearner
from memabrad.learning.task_identity import case_query, key_hashes, task_key
from memabrad.learning.text_vectors import text_counts
from memabrad.wire.trajectory import Trajectory

TEXT = "Classify this item"
ROUTES = ["class-a", "class-b"]


def _task(x: float, tags: list[str] | None = None) -> dict:
    return {"input": TEXT, "features": {"x": x, "noise": 1.0}, **({"tags": tags} if tags else {})}


def _trajectory(i: int, task: dict, route: str, reward: float) -> Trajectory:
    return Trajectory.model_validate({
        "schema_version": 1, "trajectory_id": f"t-{i:06d}", "occurred_at": "2026-01-01T00:00:00Z",
        "task": task, "candidates": ROUTES, "decision": {"route": route, "propensity": 0.5},
        "outcome": {"reward": reward, "error": False, "latency_ms": 100.0},
    })


def test_a_key_stays_short_whatever_the_task_carries() -> None:
    many = {"input": TEXT, "features": {f"a_rather_long_feature_name_{j:03d}": j + 0.123456789 for j in range(256)},
            "tags": [f"tag-{j}" for j in range(32)]}
    key = task_key(TaskView.of(many), "classify this item")
    assert len(key) - len("classify this item") < 800  # the fields as JSON: ~13,000 characters
    other = {**many, "features": {**many["features"], "a_rather_long_feature_name_000": 0.5}}
    assert task_key(TaskView.of(other), "classify this item") != key


def test_the_same_text_with_other_fields_is_another_task_and_a_text_only_key_is_unchanged() -> None:
    keys = {task_key(TaskView.of(t), "classify this item") for t in
            (_task(1.0), _task(2.0), _task(1.0, ["vip"]), {"input": TEXT, "features": {"noise": 1, "x": 1}})}
    assert len(keys) == 3  # the integer 1 and the float 1.0 are the same value
    assert task_key(TaskView.of({"input": TEXT}), "classify this item") == "classify this item"
    assert task_key(TaskView.of({"input": TEXT, "task_type": "qa"}), "classify this item") == "classify this item"


def test_an_index_restored_from_its_keys_answers_structured_tasks_as_the_live_one() -> None:
    live = CaseIndex(capacity=100)
    rng = random.Random(3)
    for i in range(60):
        view = TaskView.of(_task(rng.choice([1.0, 3.0, 9.0, 27.0]) * rng.uniform(0.9, 1.1), ["a"]))
        key, hashes = case_query(view)
        assert (text_counts(TEXT, key_hashes(key)) == text_counts(TEXT, hashes)).all()  # what the index reads
        live.add(view.input, trajectory_id=f"t{i}", route=ROUTES[i % 2], reward=rng.random(), error=False,
                 latency_ms=10.0, hashes=hashes, key=key)
    restored = CaseIndex.from_state(live.to_state())
    for x in (1.0, 2.9, 9.5, 30.0, 1000.0):
        view = TaskView.of(_task(x, ["a"]))
        assert restored.hint_of(view) == live.hint_of(view)
    # numbers far from every recorded task's: not a near duplicate, though the text is the same
    assert live.hint_of(TaskView.of(_task(1e6, ["a"]))) is None


def test_a_router_learns_from_numbers_sent_with_one_fixed_text() -> None:
    """Every event has the same text; which route is right depends only on ``x``. Keyed by text alone, every
    event after the first was a repeat, the contextual part never earned a stacking weight, and the router
    sent every task to one route (right half of the time)."""
    learner = RouterLearner.new("numbers", load_config(None, {}))
    rng = random.Random(7)
    for i in range(3000):
        x = rng.choice([0.5, 8.0]) * rng.uniform(0.95, 1.05)
        route = rng.choice(ROUTES)
        right = "class-a" if x < 2.0 else "class-b"
        learner.observe(_trajectory(i, _task(x), route, 1.0 if route == right else 0.0))
    router = learner.challenger
    assert learner.case_index.hint_of(TaskView.of(_task(0.5))) is not None
    assert len(learner.case_index) > 1000
    for x, right in ((0.5, "class-a"), (0.52, "class-a"), (8.0, "class-b"), (7.7, "class-b")):
        features, group = router.task_features(_task(x), learner.case_index.hint_of(TaskView.of(_task(x))))
        assert router.best(features, ROUTES, group) == right


def test_the_app_finds_a_task_with_fields_by_its_text_and_by_the_whole_task(tmp_path) -> None:
    from memabrad.sdk.cases import CaseLookup

    index = CaseIndex(capacity=100)
    for i, (x, route) in enumerate([(1.0, "class-a"), (50.0, "class-b")]):
        key, hashes = case_query(TaskView.of(_task(x)))
        index.add(TEXT, trajectory_id=f"t{i}", route=route, reward=1.0, error=False, latency_ms=5.0,
                  hashes=hashes, key=key)
    index.save(tmp_path / "r" / "case-index.json")
    cases = CaseLookup(tmp_path, "r", check_interval_s=0)
    assert cases.lookup_task(_task(1.0)).case.route == "class-a"
    assert cases.lookup_task(_task(50.0)).case.route == "class-b"
    assert cases.lookup(TEXT).case.route == "class-b"  # by its text alone: the latest task with that text
    assert cases.lookup("something else entirely") is None
