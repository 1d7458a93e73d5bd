"""Bounded memory of trajectory ids already learned, for duplicate detection.

Ids are kept as 64-bit hashes (blake2b): recent ones in a Python set, older ones in
sorted numpy ``uint64`` generations, merged into one sorted array so that a lookup is one
binary search however many generations there are (one per generation made the record
step's cost grow with history until the memory was full). Memory is flat: about 16 bytes
per remembered id (each generation and the merged array) plus one small set, however
many ids stream by.

The lookup is ``bisect`` over a ``memoryview`` of the merged array, not numpy's
``searchsorted``: numpy lets go of the interpreter lock in ``searchsorted`` (as in ``take``,
fancy indexing and matrix products) whatever the array's size, and in the daemon, with the
HTTP, evaluator and checkpoint threads waiting for the lock, every release can hand it to
another thread for up to the switch interval. ``bisect`` on the view holds the lock, reads the
same memory and is as fast (~1 us at two million ids).

Retention: the most recent ``capacity`` distinct ids (per partition) are remembered;
when the oldest generation falls out of that window it is dropped whole, so between
``capacity - generation_size`` and ``capacity`` ids are remembered at any time. A
duplicate older than that is learned again. Two distinct ids collide with probability
about n^2 / 2^65 (1e-7 at two million ids).
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import islice

import numpy as np

from memabrad.wire.ids import dedupe_key, trajectory_digest

_SLICE = 16_384  # ids copied per C call when checkpointing (~2 ms with the interpreter lock held)


def id_hash(trajectory_id: str) -> int:
    return dedupe_key(trajectory_digest(trajectory_id))


class DedupeMemory:
    """Set-like memory of recent ids with a fixed upper bound.

    >>> m = DedupeMemory(capacity=4, generation_size=2)
    >>> for i in range(6):
    ...     m.add(f"t{i}")
    >>> ("t0" in m, "t5" in m, len(m) <= 4)
    (False, True, True)
    """

    def __init__(self, capacity: int = 2_000_000, generation_size: int | None = None) -> None:
        self.capacity = capacity
        self.generation_size = generation_size or max(1, capacity // 8)
        self._recent: set[int] = set()
        self._generations: list[np.ndarray] = []  # oldest first, each sorted
        self._view = memoryview(np.zeros(0, np.uint64))  # every generation's ids, one sorted array, for bisect

    def __len__(self) -> int:
        return len(self._recent) + sum(len(g) for g in self._generations)

    def __contains__(self, trajectory_id: str) -> bool:
        return self.contains_hash(id_hash(trajectory_id))

    def contains_hash(self, h: int) -> bool:
        if h in self._recent:
            return True
        view = self._view
        i = bisect_left(view, h)
        return i < len(view) and view[i] == h

    def add(self, trajectory_id: str) -> None:
        self.add_hash(id_hash(trajectory_id))

    def add_hash(self, h: int) -> None:
        self._recent.add(h)
        if len(self._recent) >= self.generation_size:
            self._seal()

    def _seal(self) -> None:
        gen = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        gen.sort()
        self._generations.append(gen)
        self._recent = set()
        while sum(len(g) for g in self._generations) > self.capacity and self._generations:
            self._generations.pop(0)
        self._merge()

    def _merge(self) -> None:
        """Rebuild the merged array: once per generation (every ``generation_size`` new ids), a stable
        sort of already sorted runs, which numpy does in about linear time (20-70 ms for two million
        ids on the benchmark machine, on the record path: once per 250,000 records by default)."""
        merged = np.concatenate(self._generations) if self._generations else np.zeros(0, np.uint64)
        merged.sort(kind="stable")
        self._view = memoryview(merged)

    # -- checkpoint -------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for the checkpoint file: each generation, then the recent set."""
        out = {f"dedupe_gen_{i:04d}": g for i, g in enumerate(self._generations)}
        # Copied a slice at a time and sorted by numpy, which lets go of the interpreter lock while it
        # sorts: ``sorted()`` over a quarter of a million Python ints held the lock for ~230 ms in one C
        # call, and the checkpoint runs on a worker thread precisely so that the HTTP probes are answered
        # meanwhile.
        it = iter(self._recent)
        slices = [np.fromiter(islice(it, _SLICE), dtype=np.uint64) for _ in range(0, len(self._recent), _SLICE)]
        recent = np.concatenate(slices) if slices else np.zeros(0, np.uint64)
        recent.sort()
        out["dedupe_recent"] = recent
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], capacity: int,
                    generation_size: int | None = None) -> DedupeMemory:
        m = cls(capacity, generation_size)
        for name in sorted(k for k in arrays if k.startswith("dedupe_gen_")):
            m._generations.append(np.asarray(arrays[name], dtype=np.uint64))
        m._recent = {int(v) for v in arrays.get("dedupe_recent", np.zeros(0, np.uint64))}
        m._merge()
        return m
