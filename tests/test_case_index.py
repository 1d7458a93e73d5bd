"""Tests of the case index: exact and near-duplicate lookup, best-case choice, LRU eviction, persistence."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from memabrad.learning.case_index import CaseIndex
from memabrad.learning.features import normalize_text
from memabrad.learning.text_vectors import text_vector

LONG = ("could you please compare the quarterly revenue figures of the three largest cloud providers "
        "and summarise the main differences in their growth over the last two years")


def _add(idx: CaseIndex, text: str, tid: str, route: str, reward: float = 0.5, latency: float = 100.0) -> None:
    idx.add(text, trajectory_id=tid, route=route, reward=reward, error=False, latency_ms=latency, task_type="qa")


def _cosine(a: str, b: str) -> float:
    return float(text_vector(normalize_text(a)) @ text_vector(normalize_text(b)))


def test_exact_match_has_similarity_one_and_ignores_case_and_spacing() -> None:
    idx = CaseIndex(capacity=10)
    _add(idx, "Latest gold price?", "t1", "tool.web_search")
    for text in ("Latest gold price?", "  latest   GOLD price? "):
        m = idx.lookup(text)
        assert m is not None
        assert m.similarity == 1.0
        assert (m.case.route, m.case.trajectory_id) == ("tool.web_search", "t1")
    h = idx.hint("latest gold price?")
    assert h is not None and (h.route, h.similarity) == ("tool.web_search", 1.0)



def test_near_duplicate_with_one_word_changed_is_found() -> None:
    idx = CaseIndex(capacity=100, similarity_threshold=0.9)
    _add(idx, LONG, "t1", "tool.web_search")
    near = LONG.replace("three", "four")
    sim = _cosine(LONG, near)
    assert 0.94 <= sim < 1.0  # well above the threshold
    m = idx.lookup(near)
    assert m is not None
    assert m.case.trajectory_id == "t1"
    assert m.similarity == pytest.approx(sim, abs=1e-6)


def test_near_duplicate_with_an_added_word_is_found_and_unrelated_text_is_not() -> None:
    idx = CaseIndex(capacity=100, similarity_threshold=0.9)
    _add(idx, LONG, "t1", "tool.web_search")
    _add(idx, "write a haiku about autumn leaves", "t2", "direct")
    for near in (LONG + " thanks", "please " + LONG):
        sim = _cosine(LONG, near)
        assert 0.9 <= sim < 1.0
        m = idx.lookup(near)
        assert m is not None, near
        assert m.case.trajectory_id == "t1"
        assert m.similarity == pytest.approx(sim, abs=1e-6)
    assert idx.lookup("how do I reverse a linked list in rust") is None
    assert idx.hint("what is the weather in paris tomorrow") is None
    assert idx.lookup("write a haiku about winter snow") is None  # related but below the threshold


def test_empty_index_and_wordless_text_find_nothing() -> None:
    idx = CaseIndex(capacity=10)
    assert idx.lookup("anything") is None
    _add(idx, "some words here", "t1", "direct")
    assert idx.lookup("?!") is None


def _random_sentences(n: int, length: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)]
    return [[rng.choice(vocab) for _ in range(length)] for _ in range(n)]


def test_every_near_duplicate_above_the_threshold_is_found() -> None:
    """One word changed in a 30-word sentence: whenever the exact cosine clears the threshold, lookup finds it."""
    missed = above = 0
    for i, words in enumerate(_random_sentences(100, 30, seed=5)):
        idx = CaseIndex(capacity=10, similarity_threshold=0.9)
        text = " ".join(words)
        _add(idx, text, f"t{i}", "direct")
        changed = list(words)
        changed[15] = "replaced"
        near = " ".join(changed)
        if _cosine(text, near) >= 0.9:
            above += 1
            missed += idx.lookup(near) is None
    assert above >= 90
    assert missed / above <= 0.05, f"missed {missed} of {above} near duplicates above the threshold"


def test_best_case_is_highest_reward_then_lowest_latency() -> None:
    idx = CaseIndex(capacity=10)
    _add(idx, "plan my week", "t1", "direct", reward=0.5, latency=100)
    _add(idx, "plan my week", "t2", "clarify", reward=0.8, latency=900)  # higher reward wins
    _add(idx, "plan my week", "t3", "memory.episodic", reward=0.7, latency=10)  # lower reward loses
    _add(idx, "plan my week", "t4", "memory.semantic", reward=0.8, latency=400)  # same reward, faster wins
    _add(idx, "plan my week", "t5", "tool.code", reward=0.8, latency=400)  # exact tie: incumbent stays
    m = idx.lookup("plan my week")
    assert m is not None
    assert (m.case.trajectory_id, m.case.route) == ("t4", "memory.semantic")
    assert m.case.seen == 5
    assert len(idx) == 1


def test_capacity_evicts_the_least_recently_seen_task() -> None:
    idx = CaseIndex(capacity=3)
    _add(idx, "alpha task one", "a", "direct")
    _add(idx, "bravo task two", "b", "direct")
    _add(idx, "charlie task three", "c", "direct")
    _add(idx, "alpha task one", "a2", "direct")  # alpha seen again: bravo is now least recent
    _add(idx, "delta task four", "d", "direct")
    assert len(idx) == 3
    assert idx.lookup("bravo task two") is None
    for text in ("alpha task one", "charlie task three", "delta task four"):
        assert idx.lookup(text) is not None
    _add(idx, "echo task five", "e", "direct")  # now charlie is least recent
    assert idx.lookup("charlie task three") is None
    assert idx.lookup("alpha task one") is not None


def test_eviction_frees_near_duplicate_lookups_too() -> None:
    idx = CaseIndex(capacity=1)
    _add(idx, LONG, "t1", "direct")
    _add(idx, "a completely different request about gardening tools", "t2", "direct")
    assert idx.lookup(LONG) is None
    assert idx.lookup(LONG + " thanks") is None


def test_capacity_beyond_initial_vector_block_keeps_every_case() -> None:
    idx = CaseIndex(capacity=3000)
    for i in range(2500):
        _add(idx, f"task number {i} about topic {i * 7}", f"t{i}", "direct")
    assert len(idx) == 2500
    assert idx.lookup("task number 0 about topic 0") is not None
    m = idx.lookup("task number 2499 about topic 17493")
    assert m is not None and m.case.trajectory_id == "t2499"


def _populated() -> CaseIndex:
    idx = CaseIndex(capacity=50, similarity_threshold=0.85)
    for i, words in enumerate(_random_sentences(40, 12, seed=9)):
        _add(idx, " ".join(words), f"t{i}", ["direct", "clarify", "tool.web_search"][i % 3], reward=i / 40)
    _add(idx, LONG, "long", "memory.semantic", reward=0.99)
    _add(idx, " ".join(_random_sentences(1, 12, seed=9)[0]), "again", "direct", reward=0.0)  # re-seen
    return idx


def test_to_state_from_state_round_trip() -> None:
    idx = _populated()
    state = json.loads(json.dumps(idx.to_state()))
    twin = CaseIndex.from_state(state)
    assert twin.to_state() == idx.to_state()
    assert (twin.capacity, twin.similarity_threshold) == (50, 0.85)
    for text in (LONG, LONG.replace("three", "four"), "nothing like it at all"):
        a, b = idx.lookup(text), twin.lookup(text)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a.case == b.case and a.similarity == b.similarity
    # The LRU order survives: the next eviction removes the same task in both.
    _add(idx, "brand new task", "n", "direct")
    _add(twin, "brand new task", "n", "direct")
    idx_full = CaseIndex.from_state(idx.to_state(), capacity=41)
    twin_full = CaseIndex.from_state(twin.to_state(), capacity=41)
    assert idx_full.to_state() == twin_full.to_state()
    assert len(idx_full) == 41


def test_save_and_load(tmp_path: Path) -> None:
    idx = _populated()
    path = tmp_path / "sub" / "case-index.json"
    path.parent.mkdir()
    idx.save(path)
    loaded = CaseIndex.load(path)
    assert loaded.to_state() == idx.to_state()
    assert json.loads(path.read_text())["format"] == "memabrad.case-index/v1"
    overridden = CaseIndex.load(path, capacity=5, similarity_threshold=0.95)
    assert (overridden.capacity, overridden.similarity_threshold, len(overridden)) == (5, 0.95, 5)


def test_near_duplicate_tie_resolves_the_same_after_a_round_trip() -> None:
    idx = CaseIndex(capacity=10)
    _add(idx, "What is the stock price of Globex today?", "t1", "tool.web_search")
    _add(idx, "What is the stock price of Globex today", "t2", "clarify")  # same words, other key
    _add(idx, "What is the stock price of Globex today?", "t3", "tool.web_search")  # re-seen: LRU order flips
    query = "what is the stock price of globex today!!"  # identical words to both: an exact tie
    before = idx.lookup(query)
    after = CaseIndex.from_state(json.loads(json.dumps(idx.to_state()))).lookup(query)
    assert before is not None and after is not None
    assert before.similarity == after.similarity
    assert before.case.route == after.case.route


def test_a_full_index_adds_nothing_to_the_collectors_passes() -> None:
    """Cases, bucket rows and a slot's bucket ids are tuples of atoms, which the cyclic collector stops
    tracking: a full pass (which holds the interpreter lock for every thread, the daemon's HTTP probes
    included) must not grow with the number of cases."""
    import gc

    idx = CaseIndex(capacity=3_000)
    gc.collect()
    before = len(gc.get_objects())
    for i in range(5_000):  # past capacity: evictions too
        idx.add(f"task {i} about topic {i % 97} and {i % 13}", trajectory_id=f"t{i}", route="direct",
                reward=0.5, error=False, latency_ms=100.0)
        idx.add(f"task {i} about topic {i % 97} and {i % 13}", trajectory_id=f"u{i}", route="direct",
                reward=0.9, error=False, latency_ms=100.0)  # a better re-run replaces the case
    gc.collect()
    assert len(idx) == 3_000
    assert len(gc.get_objects()) - before < 100


def test_bucket_rows_follow_the_recency_rules() -> None:
    """Each bucket row holds, least recently seen first, the ``BUCKET_CAP`` most recently seen tasks with its
    code (a re-seen task moves to the back, re-entering a row it was trimmed from; an evicted one leaves):
    the array of rows agrees with a plain model of those rules, live and after a round trip."""
    from memabrad.learning.case_index import BUCKET_CAP

    rng = random.Random(3)
    vocab = ["alpha", "bravo", "charlie", "delta", "echo"]  # few words: many tasks share buckets
    idx = CaseIndex(capacity=30)
    model: dict[int, tuple[str, ...]] = {}  # bucket id -> keys, least recently seen first
    for i in range(3_000):
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 3)))
        key = normalize_text(text)
        if idx.get(text) is None and len(idx) == idx.capacity:
            old = next(iter(idx._cases))
            model = {b: r for b, r in ((b, tuple(k for k in r if k != old)) for b, r in model.items()) if r}
        _add(idx, text, f"t{i}", "direct")
        for b in idx._slot_buckets[idx._slot[key]].tolist():
            model[b] = (tuple(k for k in model.get(b, ()) if k != key) + (key,))[-BUCKET_CAP:]
        if i % 500 == 499:
            for twin in (idx, CaseIndex.from_state(json.loads(json.dumps(idx.to_state())))):
                rows = {}
                for b, row in enumerate(twin._buckets.tolist()):
                    slots = [s for s in row if s >= 0]
                    assert row == [-1] * (BUCKET_CAP - len(slots)) + slots  # packed to the right
                    if slots:
                        rows[b] = tuple(twin._slot_key[s] for s in slots)
                assert rows == model


def test_the_routes_that_learned_a_task_are_kept_evicted_and_restored() -> None:
    idx = CaseIndex(capacity=3)
    idx.add("reset my password", trajectory_id="t1", route="kb", reward=1.0, error=False, latency_ms=5.0,
            learned=True)
    idx.add("reset my password", trajectory_id="t2", route="llm", reward=0.0, error=False, latency_ms=5.0)  # held out
    idx.add("reset my password", trajectory_id="t3", route="tool", reward=0.5, error=False, latency_ms=5.0,
            learned=True)
    key = normalize_text("reset my password")
    assert [idx.learned_routes.learned(key, r) for r in ("kb", "llm", "tool")] == [True, False, True]
    assert not idx.learned_routes.learned(normalize_text("never seen"), "kb")
    twin = CaseIndex.from_state(json.loads(json.dumps(idx.to_state())))
    assert twin.to_state() == idx.to_state()
    assert [twin.learned_routes.learned(key, r) for r in ("kb", "llm", "tool")] == [True, False, True]
    for i in range(3):  # the task is evicted, and with it what learned it
        twin.add(f"other task {i}", trajectory_id=f"o{i}", route="kb", reward=0.0, error=False, latency_ms=5.0,
                 learned=True)
    assert not twin.learned_routes.learned(key, "kb")
    assert len(twin.to_state()["learned_by"]) == len(twin) == 3


def test_an_index_saved_before_learned_routes_were_kept_counts_every_route_as_having_learned() -> None:
    """As a task seen before was judged then: no evidence for any route (a replay decides as before)."""
    idx = _populated()
    state = json.loads(json.dumps(idx.to_state()))
    del state["learned_by"]
    old = CaseIndex.from_state(state)
    key = old.task_keys()[0]
    assert old.learned_routes.learned(key, "any-route") and old.learned_routes.learned(key, "direct")
    assert old.to_state()["learned_by"] == [None] * len(old)
    assert CaseIndex.from_state(old.to_state()).to_state() == old.to_state()


def test_the_reward_each_route_last_learned_a_task_with_is_kept_evicted_and_restored() -> None:
    """What measures the rewards' noise (``outcome_noise.py``): a route learning a task again compares the
    reward with the one it last learned the task with."""
    idx = CaseIndex(capacity=2)
    key = normalize_text("reset my password")
    idx.add("reset my password", trajectory_id="t1", route="kb", reward=1.0, error=False, latency_ms=5.0,
            learned=True)
    idx.add("reset my password", trajectory_id="t2", route="llm", reward=0.2, error=False, latency_ms=5.0)  # held out
    assert idx.learned_routes.previous(key, "kb") == 1.0 and idx.learned_routes.previous(key, "llm") is None
    idx.mark_learned(key, "llm", 0.2)  # learned once it left the window
    idx.add("reset my password", trajectory_id="t3", route="kb", reward=0.0, error=False, latency_ms=5.0,
            learned=True)
    assert (idx.learned_routes.previous(key, "kb"), idx.learned_routes.previous(key, "llm")) == (0.0, 0.2)
    twin = CaseIndex.from_state(json.loads(json.dumps(idx.to_state())))
    assert twin.to_state() == idx.to_state()
    assert (twin.learned_routes.previous(key, "kb"), twin.learned_routes.previous(key, "llm")) == (0.0, 0.2)
    for i in range(2):
        twin.add(f"other task {i}", trajectory_id=f"o{i}", route="kb", reward=0.0, error=False, latency_ms=5.0,
                 learned=True)
    assert twin.learned_routes.previous(key, "kb") is None  # evicted with its task
    kept = twin.learned_routes.to_state([normalize_text(f"other task {i}") for i in range(2)] + [key])[1]
    assert kept == [[0.0], [0.0], []]  # the evicted task's rewards went with it


def test_an_index_saved_before_rewards_were_kept_has_none_and_learns_them_from_then_on() -> None:
    idx = CaseIndex(capacity=5)
    idx.add("a task", trajectory_id="t1", route="kb", reward=1.0, error=False, latency_ms=5.0, learned=True)
    state = json.loads(json.dumps(idx.to_state()))
    del state["learned_rewards"]
    old = CaseIndex.from_state(state)
    key = normalize_text("a task")
    assert old.learned_routes.learned(key, "kb") and old.learned_routes.previous(key, "kb") is None
    old.add("a task", trajectory_id="t2", route="kb", reward=0.5, error=False, latency_ms=5.0, learned=True)
    assert old.learned_routes.previous(key, "kb") == 0.5
