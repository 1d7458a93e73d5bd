"""Case index: a task maps to its best past trajectory, for episodic hints.

A task is keyed by its normalised input; near duplicates are found by cosine similarity
of hashed word and bigram vectors (numpy). To keep lookups cheap as the index grows,
candidates come from random-hyperplane LSH buckets and only those are compared exactly.

Eviction: capacity is bounded; when full, the task seen least recently (looked up for
learning or updated) is evicted first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memabrad.learning.features import Hint, normalize_text, text_hashes

DIMS = 512
_BANDS = 20  # 20 bands of 8 random hyperplanes: a pair at cosine 0.9 shares a band with p > 0.998,
_BITS = 8    # an unrelated pair with p ~ 0.08, so few rows are compared exactly
_PROJECTION = np.random.default_rng(20261125).standard_normal((DIMS, _BANDS * _BITS)).astype(np.float32)
_POWERS = (1 << np.arange(_BITS, dtype=np.int64)).astype(np.int64)


@dataclass
class Case:
    """The best past trajectory for one task: highest reward, then lowest latency."""

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


def text_vector(text: str) -> np.ndarray:
    """Unit-norm signed hashed bag of words and bigrams in ``DIMS`` dimensions."""
    hashes = np.fromiter(text_hashes(text), dtype=np.int64)
    signs = np.where((hashes >> 31) & 1, -1.0, 1.0).astype(np.float32)
    v = np.bincount(hashes % DIMS, weights=signs, minlength=DIMS).astype(np.float32)
    n = float(np.linalg.norm(v))
    if n > 0:
        v /= n
    return v


def _bands(v: np.ndarray) -> list[tuple[int, int]]:
    bits = (v @ _PROJECTION) > 0
    codes = bits.reshape(_BANDS, _BITS).astype(np.int64) @ _POWERS
    return [(b, int(c)) for b, c in enumerate(codes)]


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
        self._cases: OrderedDict[str, Case] = OrderedDict()  # least recently seen first
        self._slot: dict[str, int] = {}
        self._free: list[int] = []
        self._vectors = np.zeros((min(capacity, 1024), DIMS), dtype=np.float32)
        self._slot_key: list[str | None] = []
        self._slot_bands: list[list[tuple[int, int]]] = []
        self._buckets: dict[tuple[int, int], set[int]] = {}
        self._last_vector: tuple[str, np.ndarray] | None = None  # lookup-then-add computes it once

    def __len__(self) -> int:
        return len(self._cases)

    # -- lookup -----------------------------------------------------------------------

    def lookup(self, text: str) -> Match | None:
        """Best past trajectory for ``text`` and its similarity, or None below the threshold."""
        key = normalize_text(text)
        case = self._cases.get(key)
        if case is not None:
            return Match(case, 1.0)
        if not self._cases:
            return None
        v = self._vector(key)
        if not v.any():
            return None
        slots: set[int] = set()
        for band in _bands(v):
            bucket = self._buckets.get(band)
            if bucket:
                slots |= bucket
        if not slots:
            return None
        ids = np.fromiter(slots, dtype=np.int64, count=len(slots))
        # Rounded, with ties to the smallest key, so the answer does not depend on slot numbers
        # (which differ after a checkpoint round trip) or on the last bits of the matrix product.
        sims = np.round((self._vectors[ids] @ v).astype(np.float64), 6)
        best = float(sims.max())
        if best < self.similarity_threshold:
            return None
        keys = [self._slot_key[int(i)] for i in ids[sims == best]]
        found = min(k for k in keys if k is not None)
        return Match(self._cases[found], min(best, 1.0))

    def hint(self, text: str) -> Hint | None:
        m = self.lookup(text)
        return None if m is None else Hint(m.case.route, m.similarity)

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
    ) -> None:
        """Record a trajectory; it replaces the task's case only if it did better."""
        key = normalize_text(text)
        new = Case(key, trajectory_id, route, float(reward), bool(error), float(latency_ms), task_type, occurred_at)
        old = self._cases.get(key)
        if old is not None:
            new.seen = old.seen + 1
            self._cases[key] = new if new.better_than(old) else old
            self._cases[key].seen = new.seen
            self._cases.move_to_end(key)
            return
        if len(self._cases) >= self.capacity:
            self._evict()
        self._cases[key] = new
        self._insert_vector(key)

    def _evict(self) -> None:
        key, _ = self._cases.popitem(last=False)
        slot = self._slot.pop(key)
        for band in self._slot_bands[slot]:
            bucket = self._buckets.get(band)
            if bucket is not None:
                bucket.discard(slot)
                if not bucket:
                    del self._buckets[band]
        self._slot_key[slot] = None
        self._slot_bands[slot] = []
        self._free.append(slot)

    def _vector(self, key: str) -> np.ndarray:
        last = self._last_vector
        if last is not None and last[0] == key:
            return last[1]
        v = text_vector(key)
        self._last_vector = (key, v)
        return v

    def _insert_vector(self, key: str) -> None:
        v = self._vector(key)
        if self._free:
            slot = self._free.pop()
        else:
            slot = len(self._slot_key)
            self._slot_key.append(None)
            self._slot_bands.append([])
            if slot >= len(self._vectors):
                grown = np.zeros((min(self.capacity, 2 * len(self._vectors)), DIMS), dtype=np.float32)
                grown[: len(self._vectors)] = self._vectors
                self._vectors = grown
        self._vectors[slot] = v
        self._slot[key] = slot
        self._slot_key[slot] = key
        bands = _bands(v) if v.any() else []
        self._slot_bands[slot] = bands
        for band in bands:
            self._buckets.setdefault(band, set()).add(slot)

    # -- persistence ------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "format": "memabrad.case-index/v1",
            "capacity": self.capacity,
            "similarity_threshold": self.similarity_threshold,
            "cases": [asdict(c) for c in self._cases.values()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], *, capacity: int | None = None,
                   similarity_threshold: float | None = None) -> CaseIndex:
        """Rebuild the index; vectors and LSH codes are computed in one batch (restores are on the
        daemon's assignment path, so they must be quick)."""
        idx = cls(
            capacity=capacity or int(state.get("capacity", 20_000)),
            similarity_threshold=similarity_threshold or float(state.get("similarity_threshold", 0.9)),
        )
        cases = [Case(**raw) for raw in state.get("cases", [])][-idx.capacity:]
        n = len(cases)
        if n == 0:
            return idx
        vectors = np.stack([text_vector(c.key) for c in cases])
        bits = (vectors @ _PROJECTION) > 0
        codes = bits.reshape(n, _BANDS, _BITS).astype(np.int64) @ _POWERS
        nonzero = vectors.any(axis=1)
        idx._vectors = np.zeros((max(n, min(idx.capacity, 1024)), DIMS), dtype=np.float32)
        idx._vectors[:n] = vectors
        idx._slot_key = [c.key for c in cases]
        idx._slot_bands = [[(b, int(code)) for b, code in enumerate(row)] if nz else []
                           for row, nz in zip(codes.tolist(), nonzero.tolist(), strict=True)]
        for slot, case in enumerate(cases):
            idx._cases[case.key] = case
            idx._slot[case.key] = slot
            for band in idx._slot_bands[slot]:
                idx._buckets.setdefault(band, set()).add(slot)
        return idx

    def save(self, path: str | Path) -> None:
        from memabrad.store.atomic import atomic_write_json

        atomic_write_json(Path(path), self.to_state())

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> CaseIndex:
        from memabrad.store.atomic import read_json

        state = read_json(Path(path))
        return cls.from_state(state, **kwargs)
