"""Tests of the hashed task featurizer: process independence, normalisation, hint and numeric features."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import zlib
from typing import Any

import pytest

from memabrad.learning.case_index import CaseIndex
from memabrad.learning.features import Featurizer, Hint, TaskView, normalize_text, stable_hash, tokens

TASKS: list[dict[str, Any]] = [
    {"input": "What is the latest price of gold?", "task_type": "qa", "tags": ["finance"],
     "features": {"tokens": 7, "has_code": 0}},
    {"input": "Fix this KeyError in my python script", "task_type": "coding",
     "features": {"tokens": 7, "has_code": 1, "history_sessions": 12}},
    {"input": "remember what we discussed yesterday about the trip", "tags": ["travel", "personal"]},
    {"input": "hmm"},
]

_CHILD = """
import json, sys
from memabrad.learning.features import Featurizer, Hint
tasks = json.loads(sys.stdin.read())
f = Featurizer(hash_bits=18)
out = [f.featurize(t) for t in tasks] + [f.featurize(tasks[0], Hint("tool.web_search", 0.95))]
print(json.dumps([{str(k): v for k, v in x.items()} for x in out]))
"""


def _key(name: str, bits: int = 18) -> int:
    """The bucket the featurizer should use for a feature name (crc32 masked to ``bits``)."""
    return zlib.crc32(name.encode("utf-8")) & ((1 << bits) - 1)


def _in_process() -> list[dict[int, float]]:
    f = Featurizer(hash_bits=18)
    return [f.featurize(t) for t in TASKS] + [f.featurize(TASKS[0], Hint("tool.web_search", 0.95))]


@pytest.mark.parametrize("hash_seed", ["0", "12345"])
def test_featurize_is_identical_in_another_process_with_a_different_hash_seed(hash_seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    proc = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(TASKS), capture_output=True,
                          text=True, env=env, timeout=60, check=True)
    theirs = [{int(k): v for k, v in x.items()} for x in json.loads(proc.stdout)]
    assert theirs == _in_process()


def test_stable_hash_is_crc32() -> None:
    assert stable_hash("w:sql") == zlib.crc32(b"w:sql") == 919691466


@pytest.mark.parametrize("task", TASKS)
def test_vector_has_unit_l2_norm(task: dict[str, Any]) -> None:
    x = Featurizer(hash_bits=12).featurize(task)
    assert x
    assert math.isclose(math.fsum(v * v for v in x.values()), 1.0, rel_tol=1e-12)
    assert all(0 <= k < 1 << 12 for k in x)


def test_empty_input_gives_empty_vector_without_division_by_zero() -> None:
    assert Featurizer().featurize({"input": "!!!"}) == {}


def test_words_bigrams_type_and_tags_are_hashed_with_their_prefixes() -> None:
    x = Featurizer().featurize({"input": "gold price", "task_type": "qa", "tags": ["fin"]})
    text = 1 / math.sqrt(3)  # the text block (2 words, 1 bigram) has unit norm of its own
    expected_raw = {_key("w:gold"): text, _key("w:price"): text, _key("b:gold_price"): text,
                    _key("t:qa"): 1.0, _key("g:fin"): 1.0, _key("s:words"): 0.25 * math.log1p(2) / math.log(10_000)}
    norm = math.sqrt(sum(v * v for v in expected_raw.values()))
    assert x == pytest.approx({k: v / norm for k, v in expected_raw.items()})
    v1 = Featurizer(version=1).featurize({"input": "gold price", "task_type": "qa", "tags": ["fin"]})
    old = {_key("w:gold"): 1.0, _key("w:price"): 1.0, _key("b:gold_price"): 1.0, _key("t:qa"): 2.0,
           _key("g:fin"): 1.0}  # models saved before features version 2 keep their features
    assert v1 == pytest.approx({k: v / math.sqrt(8) for k, v in old.items()})


def test_a_long_input_gets_its_end_as_a_block_of_its_own() -> None:
    opening = " ".join(f"shared{i}" for i in range(300))

    def cosine(f: Featurizer) -> float:
        a = f.featurize({"input": opening + " please fix the null pointer in the parser module"})
        b = f.featurize({"input": opening + " prove that the sum of two odd numbers is even"})
        return sum(v * b.get(k, 0.0) for k, v in a.items())

    # one block: the shared opening makes the two tasks look identical; the end block tells them apart
    assert cosine(Featurizer(version=1)) > 0.95
    assert cosine(Featurizer()) < 0.85


def test_hint_feature_is_present_and_weighted_by_similarity() -> None:
    f = Featurizer()
    task = {"input": "latest gold price", "task_type": "qa"}
    plain = f.featurize(task)
    hinted = f.featurize(task, Hint("tool.web_search", 0.9))
    hkey = _key("h:tool.web_search")
    assert hkey not in plain
    assert hinted[hkey] == pytest.approx(0.9 * 0.5**0.5)
    # A different hinted route is a different feature.
    assert _key("h:direct") in f.featurize(task, Hint("direct", 1.0))


def test_a_hint_sits_beside_the_task_and_leaves_its_other_features_as_they_were_from_version_7() -> None:
    """A task's features must not depend on whether the case index knows it: the route models learn the other
    features of a hinted task as though it were new, and serve new tasks with no hint (a hint within the unit
    vector scaled the rest by 0.71, and new tasks' predictions then overshot by 1.41)."""
    task = {"input": "latest gold price", "task_type": "qa"}
    hint = Hint("tool.web_search", 1.0)
    f = Featurizer()
    plain, hinted = f.featurize(task), f.featurize(task, hint)
    assert {k: v for k, v in hinted.items() if k != _key("h:tool.web_search")} == plain
    old = Featurizer(version=6)  # a model saved before: the hint within the unit vector
    o_plain, o_hinted = old.featurize(task), old.featurize(task, hint)
    assert sum(v * v for v in o_hinted.values()) == pytest.approx(1.0)
    assert o_hinted[_key("t:qa")] / o_plain[_key("t:qa")] == pytest.approx(0.5**0.5, rel=0.2)


def test_a_near_duplicates_hint_is_a_feature_apart_from_an_exact_repeats_from_version_6() -> None:
    task = {"input": "latest gold price", "task_type": "qa"}
    exact, near = Hint("tool.web_search", 1.0), Hint("tool.web_search", 0.93, exact=False)
    new = Featurizer()
    assert _key("h:tool.web_search") in new.featurize(task, exact)
    x = new.featurize(task, near)
    assert _key("hn:tool.web_search") in x and _key("h:tool.web_search") not in x
    old = Featurizer(version=5)  # a model saved before keeps one hint feature for both
    assert _key("h:tool.web_search") in old.featurize(task, near)
    assert _key("hn:tool.web_search") not in old.featurize(task, near)


def test_the_case_index_says_whether_its_hint_is_an_exact_repeat() -> None:
    idx = CaseIndex()
    idx.add("reset my password please now", trajectory_id="t1", route="kb", reward=1.0, error=False,
            latency_ms=10.0)
    assert idx.hint("Reset my password  please now") == Hint("kb", 1.0, exact=True)
    near = idx.hint("reset my password please now thanks")
    assert near is not None and not near.exact and near.route == "kb" and near.similarity < 1.0
    assert idx.hint_of(TaskView.of({"input": "reset my password please now thanks"})) == near


def test_numeric_features_are_log_scaled_and_signed_in_version_2() -> None:
    f = Featurizer(version=2)  # models saved before version 3 keep their features
    x = f.featurize({"input": "q", "task_type": "qa",
                     "features": {"tokens": 99, "delta": -9, "zero": 0, "has_code": 1}})
    t = x[_key("t:qa")]  # raw 1.0
    assert x[_key("f:tokens")] / t == pytest.approx(math.log(100.0))  # log1p(99) = ln 100
    assert x[_key("f:delta")] / t == pytest.approx(-math.log(10.0))  # -log1p(9)
    assert x[_key("f:has_code")] / t == pytest.approx(math.log(2.0))
    assert _key("f:zero") not in x


def _knots(x: dict[int, float], name: str, sign: str = "f:") -> dict[int, float]:
    """The knot weights of numeric feature ``name`` in ``x``, by knot number, over the task type's scale."""
    t = x[_key("t:qa")]
    return {k: x[_key(f"{sign}{name}#{k}")] / t for k in range(-45, 46) if _key(f"{sign}{name}#{k}") in x}


def test_numeric_features_spread_over_the_two_nearest_knots_of_their_logarithm() -> None:
    from memabrad.learning.features import KNOT_STEP

    f = Featurizer()
    x = f.featurize({"input": "q", "task_type": "qa",
                     "features": {"tokens": 99, "cost": 0.003, "delta": -9, "zero": 0, "one": 1}})
    pos = math.log(99) / KNOT_STEP  # 9.19: knots 9 and 10
    assert _knots(x, "tokens") == {9: pytest.approx(10 - pos), 10: pytest.approx(pos - 9)}
    pos = math.log(0.003) / KNOT_STEP  # -11.6: a value below 1 has knots of its own, not a sliver of one
    assert _knots(x, "cost") == {-12: pytest.approx(-11 - pos), -11: pytest.approx(pos + 12)}
    assert set(_knots(x, "delta", "f-:")) == {4, 5}  # negative values: their own knots
    assert _knots(x, "one") == {0: pytest.approx(1.0)}  # on a knot: one feature
    assert not _knots(x, "zero") and _key("f:zero") not in x
    # the old single log1p term is gone
    assert _key("f:tokens") not in x


def test_a_numeric_feature_keeps_its_information_beside_a_long_text() -> None:
    """Version 2 let a large log term take over the vector's norm: a 20- and a 5,000-token task came
    out nearly alike. With knots, the number's block has norm in [0.71, 1] whatever its size, so the
    text and task type keep their weight and different sizes light different knots."""
    f = Featurizer()
    text = "please help me with this report " * 5
    small = f.featurize({"input": text, "task_type": "qa", "features": {"tokens": 20}})
    large = f.featurize({"input": text, "task_type": "qa", "features": {"tokens": 5000}})
    assert small[_key("t:qa")] == pytest.approx(large[_key("t:qa")], rel=0.05)
    v2 = Featurizer(version=2)
    old_small = v2.featurize({"input": text, "task_type": "qa", "features": {"tokens": 20}})
    old_large = v2.featurize({"input": text, "task_type": "qa", "features": {"tokens": 5000}})
    assert old_large[_key("t:qa")] < 0.45 * old_small[_key("t:qa")]  # what version 2 did to the rest
    assert not set(_knots(small, "tokens")) & set(_knots(large, "tokens"))
    huge = f.featurize({"input": text, "task_type": "qa", "features": {"tokens": 1e300}})
    assert set(_knots(huge, "tokens")) == {40}  # clamped: the knots are bounded in number


def test_a_route_model_learns_a_step_in_a_numeric_feature() -> None:
    """A cheap model good below 300 tokens and poor above: learnable from the knots by one linear model."""
    import random

    from memabrad.learning.route_model import RouteModel

    f, m, rng = Featurizer(), RouteModel(), random.Random(3)
    for _ in range(3000):
        tok = math.exp(rng.uniform(math.log(20), math.log(5000)))
        x = f.featurize({"input": "q", "features": {"tokens": tok}})
        m.learn(x, reward=(0.85 if tok < 300 else 0.40) + rng.uniform(-0.1, 0.1), error=False, latency_s=0.1)
    short = m.predict(f.featurize({"input": "q", "features": {"tokens": 60}}))[0]
    long = m.predict(f.featurize({"input": "q", "features": {"tokens": 2000}}))[0]
    assert short == pytest.approx(0.85, abs=0.05)
    assert long == pytest.approx(0.40, abs=0.05)


def test_task_view_accepts_dicts_and_models() -> None:
    from memabrad.wire.trajectory import Task

    model = Task.model_validate({"input": "Hi there", "task_type": "chitchat", "features": {"tokens": 2},
                                 "tags": ["x"]})
    f = Featurizer()
    assert f.featurize(model) == f.featurize(model.model_dump())
    assert TaskView.of(model).tags == ("x",)


def test_text_helpers() -> None:
    assert normalize_text("  How do I  SPEED up\nthis? ") == "how do i speed up this?"
    assert tokens("Speed up SQL-query #42") == ["speed", "up", "sql", "query", "42"]
