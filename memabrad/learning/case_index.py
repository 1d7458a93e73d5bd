"""Case index: a task maps to its best past trajectory, for episodic hints.

A task is keyed by its normalised input and, where it has them, its tags and numbers
(``task_identity.py``); near duplicates are found by cosine similarity of hashed word and
bigram vectors, plus a token per tag and number (numpy). To keep lookups cheap as the index grows,
candidates come from random-hyperplane LSH buckets and only those are compared exactly.

Eviction: capacity is bounded; when full, the task seen least recently (recorded or
re-recorded) is evicted first.

Beside each case the index keeps the routes that have *learned* the task (a trajectory of it that
was trained on, not held out; ``learned_routes.py``), evicted and saved with it.

Bounded work, however repetitive the texts: an exact repeat is one dict lookup; a new text
compares against at most ``_BANDS x BUCKET_CAP`` candidates. Each LSH bucket keeps only the
``BUCKET_CAP`` most recently seen tasks with its code (a re-seen task moves to the back of
its buckets, and comes back into a bucket it had been trimmed from). Bucket membership is
therefore a function of the cases and their recency order alone, so an index restored
from its state answers exactly as the live one did. A near duplicate of a task that was
trimmed from all its buckets (thousands of more recent look-alikes) is not found; one of
those look-alikes is, which is what a hint needs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from memabrad.learning.features import Hint, TaskView, normalize_text
from memabrad.learning.learned_routes import LearnedRoutes
from memabrad.learning.task_identity import case_query, key_hashes
from memabrad.learning.text_vectors import DIMS, dense, sparse_counts, text_counts

_BANDS = 20  # 20 bands of 12 random hyperplanes: a pair at cosine 0.9 shares a band with p ~ 0.97
_BITS = 12   # (0.99 at 0.93), an unrelated pair with p ~ 0.005, so few rows are compared exactly
BUCKET_CAP = 4  # most recently seen tasks kept per bucket: at most 80 exact comparisons a lookup
_CODES = 1 << _BITS
_BAND_OFFSETS = np.arange(_BANDS, dtype=np.int64) * _CODES  # bucket id = band * _CODES + code
# Random +-1 hyperplanes. Vectors are signed counts clipped to +-COUNT_CLIP (``text_vectors.py``), so every
# product below is an integer below 2^24, computed exactly in float32 whatever the summation order: a code
# bit or a similarity never depends on which BLAS path (gemv live, gemm at restore) or row position computed it.
_PROJECTION = np.where(np.random.default_rng(20261125).random((DIMS, _BANDS * _BITS)) < 0.5, -1.0,
                       1.0).astype(np.float32)
_POWERS = (1 << np.arange(_BITS, dtype=np.int64)).astype(np.int64)
_BEFORE_LAST = np.arange(BUCKET_CAP - 1)  # a bucket row's columns but its last


class Case(NamedTuple):
    """The best past trajectory for one task: highest reward, then lowest latency.

    The index stores a case's fields as a plain tuple, and its buckets in numpy arrays: the cyclic
    collector stops tracking a tuple of atoms (not a tuple subclass such as this one, which is only
    built to answer) and never tracks an array of numbers, so a full index does not lengthen the
    collector's full passes, which hold the interpreter lock for every thread (the daemon's HTTP probes
    included).
    """

    key: str
    trajectory_id: str
    route: str
    reward: float
    error: bool
    latency_ms: float
    task_type: str | None = None
    occurred_at: str | None = None
    seen: int = 1

    def better_than(self, other: Case) -> bool:
        return (self.reward, -self.latency_ms) > (other.reward, -other.latency_ms)


@dataclass(frozen=True)
class Match:
    case: Case
    similarity: float


def _buckets_of(projected: np.ndarray) -> np.ndarray:
    """Bucket ids (unique across bands), ``_BANDS`` per text, of one text's or a batch's ``counts @ _PROJECTION``."""
    bits = (projected > 0).reshape(*projected.shape[:-1], _BANDS, _BITS)
    return bits.astype(np.int64) @ _POWERS + _BAND_OFFSETS


class CaseIndex:
    """Bounded map from tasks to their best past trajectory.

    >>> idx = CaseIndex(capacity=10)
    >>> idx.add("Latest gold price?", trajectory_id="t1", route="tool.web_search", reward=0.9,
    ...         error=False, latency_ms=800)
    >>> m = idx.lookup("latest gold price?")
    >>> (m.case.route, round(m.similarity, 3))
    ('tool.web_search', 1.0)
    """

    def __init__(self, capacity: int = 20_000, similarity_threshold: float = 0.9) -> None:
        self.capacity = capacity
        self.similarity_threshold = similarity_threshold
        # key -> the case's fields as a plain tuple (a Case is a tuple subclass, which the collector keeps
        # tracking); least recently seen first
        self._cases: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._slot: dict[str, int] = {}
        self._free: list[int] = []
        rows = min(capacity, 1024)
        # signed counts, one row per slot; int8 holds them exactly (|count| <= COUNT_CLIP) in a quarter of the
        # memory, which matters: gathering a lookup's candidate rows is bound by memory, not arithmetic
        self._vectors = np.zeros((rows, DIMS), dtype=np.int8)
        self._norms = np.zeros(rows)
        self._slot_buckets = np.zeros((rows, _BANDS), dtype=np.int64)  # unused for a wordless text (norm 0)
        self._slot_key: list[str | None] = []
        # bucket id -> its slots, least recently seen first, packed to the right (-1: none). One array, not a
        # dict of tuples: a new text reads 20 rows to look up, then 20 to evict and 20 to enter, and the
        # scattered entries and tuples of a dict cost cache misses (they were most of the index's time).
        self._buckets = np.full((_BANDS * _CODES, BUCKET_CAP), -1, dtype=np.int32)
        self._last: tuple[str, np.ndarray, float, np.ndarray] | None = None  # lookup-then-add: once
        self.learned_routes = LearnedRoutes()

    def __len__(self) -> int:
        return len(self._cases)

    # -- lookup -----------------------------------------------------------------------

    def lookup(self, text: str, hashes: list[int] | None = None, key: str | None = None) -> Match | None:
        """Best past trajectory for ``text`` and its similarity, or None below the threshold.

        ``hashes``, ``key``: ``text_hashes(text)`` and ``normalize_text(text)`` if the caller has them
        (the record path computes each once per trajectory).
        """
        key = normalize_text(text) if key is None else key
        row = self._cases.get(key)
        if row is not None:
            return Match(Case._make(row), 1.0)
        if not self._cases:
            return None
        v, norm, buckets = self._prepared(key, hashes)
        if norm == 0:  # a wordless text is in no bucket
            return None
        # Every slot of the text's buckets, a slot in several of them more than once: a repeated row
        # changes neither the best similarity nor the smallest key at it, and gathering it again costs
        # less than building a set of them.
        ids = self._buckets.take(buckets, axis=0).ravel()
        ids = ids[ids >= 0]
        if not len(ids):
            return None
        # Rounded, with ties to the smallest key, so the answer does not depend on slot numbers
        # (which differ after a checkpoint round trip) or on the last bits of the matrix product.
        dots = self._vectors.take(ids, axis=0).astype(np.float32) @ v  # exact integers, divided as float64
        sims = (dots / (self._norms.take(ids) * norm)).round(6)
        best = float(np.maximum.reduce(sims))  # ``sims.max()`` without its Python wrapper
        if best < self.similarity_threshold:
            return None
        keys = [self._slot_key[i] for i in ids[sims == best].tolist()]
        found_key = min(k for k in keys if k is not None)
        return Match(Case._make(self._cases[found_key]), min(best, 1.0))

    def get(self, text: str, key: str | None = None) -> Case | None:
        """The case of exactly this text (after normalisation), if it was recorded."""
        row = self._cases.get(normalize_text(text) if key is None else key)
        return None if row is None else Case._make(row)

    def task_keys(self) -> list[str]:
        """Every task's key, least recently seen first."""
        return list(self._cases)

    def hint(self, text: str, hashes: list[int] | None = None, key: str | None = None) -> Hint | None:
        key = normalize_text(text) if key is None else key
        row = self._cases.get(key)
        if row is not None:  # ``lookup``'s exact match, without building its Case and Match
            return Hint(row[2], 1.0)  # the route
        m = self.lookup(text, hashes, key)  # a near duplicate (an exact match returned above)
        return None if m is None else Hint(m.case.route, m.similarity, exact=False)

    def hint_of(self, view: TaskView) -> Hint | None:
        """``hint`` for a whole task: its text and the fields that are part of its identity, as serving asks."""
        key, hashes = case_query(view)
        return self.hint(view.input, hashes, key)

    # -- update -----------------------------------------------------------------------

    def add(
        self,
        text: str,
        *,
        trajectory_id: str,
        route: str,
        reward: float,
        error: bool,
        latency_ms: float,
        task_type: str | None = None,
        occurred_at: str | None = None,
        hashes: list[int] | None = None,
        key: str | None = None,
        learned: bool = False,
    ) -> None:
        """Record a trajectory; it replaces the task's case only if it did better. ``learned``: its route
        learned it (it was trained on, not held out)."""
        key = normalize_text(text) if key is None else key
        old = self._cases.get(key)
        if learned:
            self.learned_routes.add(key, route, float(reward))
        if old is not None:
            if (float(reward), -float(latency_ms)) > (old[3], -old[5]):  # reward, latency_ms
                self._cases[key] = (key, trajectory_id, route, float(reward), bool(error), float(latency_ms),
                                    task_type, occurred_at, old[8] + 1)
            else:
                self._cases[key] = (*old[:8], old[8] + 1)  # seen + 1
            self._cases.move_to_end(key)
            self._touch(self._slot[key])
            return
        if len(self._cases) >= self.capacity:
            self._evict()
        self._cases[key] = (key, trajectory_id, route, float(reward), bool(error), float(latency_ms), task_type,
                            occurred_at, 1)
        self._insert(key, hashes)

    def mark_learned(self, key: str, route: str, reward: float | None = None) -> None:
        """``route`` learned the task ``key`` (with ``reward``) after it was recorded (a held-out trajectory, learned
        once it left the benchmark window); nothing once the task has left the index, as for any evicted case."""
        if key in self._cases:
            self.learned_routes.add(key, route, reward)

    def _touch(self, slot: int, fresh: bool = False) -> None:
        """A re-seen task moves to the back of each of its bucket rows (re-entering a row it had been
        trimmed from, which then drops its least recently seen slot if over ``BUCKET_CAP``). ``fresh``: a
        slot just filled, in none of its rows yet, so every entry moves left without looking for it."""
        if self._norms[slot] == 0:  # a wordless text is in no bucket
            return
        ids = self._slot_buckets[slot]
        rows = self._buckets[ids]
        if fresh:
            rows[:, :-1] = rows[:, 1:]
        else:
            # Where the slot is, the entries after it move one place left; where it is not, all of them do
            # (argmax is 0), dropping the first entry: an empty one, or the least recently seen slot.
            at = (rows == slot).argmax(axis=1)
            rows[:, :-1] = np.where(at[:, None] <= _BEFORE_LAST, rows[:, 1:], rows[:, :-1])
        rows[:, -1] = slot
        self._buckets[ids] = rows

    def _evict(self) -> None:
        key, _ = self._cases.popitem(last=False)
        self.learned_routes.drop(key)
        slot = self._slot.pop(key)
        if self._norms[slot] > 0:
            ids = self._slot_buckets[slot]
            rows = self._buckets[ids]
            # Rows are in recency order, so the least recently seen task is the first entry of any row it is
            # still in: emptying that entry keeps the row packed to the right.
            rows[rows == slot] = -1
            self._buckets[ids] = rows
        self._slot_key[slot] = None
        self._free.append(slot)

    def _prepared(self, key: str, hashes: list[int] | None) -> tuple[np.ndarray, float, np.ndarray]:
        """The key's counts, norm and buckets (none for a wordless text), once per lookup-then-add."""
        last = self._last
        if last is not None and last[0] == key:
            return last[1], last[2], last[3]
        dims, counts = sparse_counts(key_hashes(key) if hashes is None else hashes)
        v = dense(dims, counts)
        norm = math.sqrt(counts @ counts)  # exact integers, as ``v @ v``
        # only the text's dimensions' rows of the projection: the same exact integer sums as ``v @ _PROJECTION``
        buckets = _buckets_of(counts @ _PROJECTION.take(dims, axis=0))
        self._last = (key, v, norm, buckets)
        return v, norm, buckets

    def _grow(self) -> None:
        rows = min(self.capacity, 2 * len(self._vectors))
        vectors, norms = np.zeros((rows, DIMS), dtype=np.int8), np.zeros(rows)
        slot_buckets = np.zeros((rows, _BANDS), dtype=np.int64)
        vectors[: len(self._vectors)] = self._vectors
        norms[: len(self._norms)] = self._norms
        slot_buckets[: len(self._slot_buckets)] = self._slot_buckets
        self._vectors, self._norms, self._slot_buckets = vectors, norms, slot_buckets

    def _insert(self, key: str, hashes: list[int] | None = None) -> None:
        v, norm, buckets = self._prepared(key, hashes)
        if self._free:
            slot = self._free.pop()
        else:
            slot = len(self._slot_key)
            self._slot_key.append(None)
            if slot >= len(self._vectors):
                self._grow()
        self._vectors[slot] = v
        self._norms[slot] = norm
        self._slot[key] = slot
        self._slot_key[slot] = key
        self._slot_buckets[slot] = buckets
        self._touch(slot, fresh=True)

    # -- persistence ------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        learned_by, learned_rewards = self.learned_routes.to_state(self._cases)
        return {
            "format": "memabrad.case-index/v1",
            "capacity": self.capacity,
            "similarity_threshold": self.similarity_threshold,
            "cases": [{"key": c.key, "trajectory_id": c.trajectory_id, "route": c.route, "reward": c.reward,
                       "error": c.error, "latency_ms": c.latency_ms, "task_type": c.task_type,
                       "occurred_at": c.occurred_at, "seen": c.seen} for c in map(Case._make, self._cases.values())],
            # per case, the routes that learned it: apart from the cases, which readers build ``Case``s from
            "learned_by": learned_by,
            "learned_rewards": learned_rewards,  # in ``learned_by``'s order
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], *, capacity: int | None = None,
                   similarity_threshold: float | None = None) -> CaseIndex:
        """Rebuild the index (``_restore``)."""
        idx = cls(
            capacity=capacity or int(state.get("capacity", 20_000)),
            similarity_threshold=similarity_threshold or float(state.get("similarity_threshold", 0.9)),
        )
        cases = [Case(**raw) for raw in state.get("cases", [])][-idx.capacity:]
        idx.learned_routes = LearnedRoutes.from_state(state.get("learned_by"), [c.key for c in cases],
                                                      state.get("learned_rewards"))
        _restore(idx, cases)
        return idx

    def save(self, path: str | Path) -> None:
        from memabrad.store.atomic import atomic_write_json

        atomic_write_json(Path(path), self.to_state())

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> CaseIndex:
        from memabrad.store.atomic import read_json

        state = read_json(Path(path))
        return cls.from_state(state, **kwargs)


def _restore(idx: CaseIndex, cases: list[Case]) -> None:
    """Fill an empty index with ``cases`` (least recently seen first): vectors and buckets in one batch
    (restores are on the daemon's assignment path, so they must be quick)."""
    n = len(cases)
    if n == 0:
        return
    vectors = np.stack([text_counts(c.key, key_hashes(c.key)) for c in cases])
    rows = max(n, min(idx.capacity, 1024))
    idx._vectors, idx._norms = np.zeros((rows, DIMS), dtype=np.int8), np.zeros(rows)
    idx._slot_buckets = np.zeros((rows, _BANDS), dtype=np.int64)
    idx._vectors[:n] = vectors
    idx._norms[:n] = np.sqrt(np.einsum("ij,ij->i", vectors, vectors).astype(np.float64))
    idx._slot_buckets[:n] = _buckets_of(vectors @ _PROJECTION)
    idx._slot_key = [c.key for c in cases]
    for slot, case in enumerate(cases):  # least recently seen first, exactly as they were touched live
        idx._cases[case.key] = tuple(case)
        idx._slot[case.key] = slot
        idx._touch(slot, fresh=True)


def lookup_task(index: CaseIndex, view: TaskView) -> Match | None:
    """``CaseIndex.lookup`` of a whole task: its text and the fields that are part of its identity
    (``task_identity``), as ``CaseIndex.hint_of`` asks for a hint."""
    key, hashes = case_query(view)
    return index.lookup(view.input, hashes, key)
