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

Sealing a generation (every ``generation_size`` new ids) sorts it and re-merges every generation:
50-145 ms for two million ids, too long for the event loop the record path runs on. So the full
set is handed, frozen, to a worker thread (numpy's sort and copies let go of the interpreter lock,
so they run beside the record path on a second core). Until the merged array lands, lookups
search that set and the kept generations one by one (the old merged array still holds the
generation the seal pushed out of the window), so answers are the same before and after it
lands and its timing changes nothing a replay could see. The worker also frees the set after
it lands, a few thousand ids per step: freeing a quarter of a million ints in one call holds
the lock for ~10 ms wherever it runs. Measured over 2.3 million ids: the worst add went from
101-145 ms to 10-17 ms, and no add took over 30 ms (nine did).

Retention: the most recent ``capacity`` distinct ids (per partition) are remembered;
when the oldest generation falls out of that window it is dropped whole, so between
``capacity - generation_size`` and ``capacity`` ids are remembered at any time. A
duplicate older than that is learned again. Two distinct ids collide with probability
about n^2 / 2^65 (1e-7 at two million ids).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from itertools import islice

import numpy as np

from memabrad.wire.ids import dedupe_key, trajectory_digest

_SLICE = 16_384  # ids copied per C call when checkpointing (~2 ms with the interpreter lock held)


def id_hash(trajectory_id: str) -> int:
    return dedupe_key(trajectory_digest(trajectory_id))


def _in_sorted(view: memoryview, h: int) -> bool:
    i = bisect_left(view, h)
    return i < len(view) and view[i] == h


def _sorted_ids(ids: set[int]) -> np.ndarray:
    """``ids`` as a sorted uint64 array, copied a slice at a time: one ``fromiter`` over a quarter of a
    million ids would hold the interpreter lock for ~10 ms in one C call."""
    it = iter(ids)
    slices = [np.fromiter(islice(it, _SLICE), dtype=np.uint64) for _ in range(0, len(ids), _SLICE)]
    out = np.concatenate(slices) if slices else np.zeros(0, np.uint64)
    out.sort()
    return out


def _merged(generations: list[np.ndarray]) -> np.ndarray:
    """Every generation's ids in one sorted array: a stable sort of sorted runs, about linear time."""
    merged = np.concatenate(generations) if generations else np.zeros(0, np.uint64)
    merged.sort(kind="stable")
    return merged


class _Seal:
    """One generation being sealed on a worker thread: its sorted ids and the new merged array."""

    def __init__(self, ids: set[int], kept: list[np.ndarray]) -> None:
        self.ids = ids  # frozen: the memory adds to a new set from now on
        self.kept = kept
        self.kept_views = [g.data for g in kept]  # searched one by one until this lands
        self.generation: np.ndarray | None = None
        self.merged: np.ndarray | None = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.landed = threading.Event()
        threading.Thread(target=self._run, name="dedupe-seal", daemon=True).start()

    def _run(self) -> None:
        try:
            self.generation = _sorted_ids(self.ids)
            self.merged = _merged([*self.kept, self.generation])
        except BaseException as err:  # noqa: BLE001 - re-raised where the seal lands
            self.error = err
        self.finished.set()
        # Once landed, the set goes here, a few thousand ids per step: freeing a quarter of a million ints
        # at once is one C call that holds the interpreter lock for ~10 ms, wherever it happens.
        self.landed.wait()
        ids = self.ids
        while ids:
            for _ in range(min(len(ids), 4096)):
                ids.pop()

    def wait(self) -> None:
        self.finished.wait()
        if self.error is not None:
            self.landed.set()
            raise self.error


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
        self._view = np.zeros(0, np.uint64).data  # every generation's ids, one sorted array, for bisect
        self._seal_job: _Seal | None = None  # a generation being sealed on a worker thread

    def __len__(self) -> int:
        job = self._seal_job
        if job is not None:
            return len(self._recent) + len(job.ids) + sum(len(g) for g in job.kept)
        return len(self._recent) + sum(len(g) for g in self._generations)

    def __contains__(self, trajectory_id: str) -> bool:
        return self.contains_hash(id_hash(trajectory_id))

    def contains_hash(self, h: int) -> bool:
        if h in self._recent:
            return True
        job = self._seal_job
        if job is not None:
            if job.finished.is_set():
                self._land()
            else:
                return h in job.ids or any(_in_sorted(g, h) for g in job.kept_views)
        return _in_sorted(self._view, h)

    def add(self, trajectory_id: str) -> None:
        self.add_hash(id_hash(trajectory_id))

    def add_hash(self, h: int) -> None:
        self._recent.add(h)
        if len(self._recent) >= self.generation_size:
            self._seal()

    def _seal(self) -> None:
        """Hand the full recent set to a worker thread; which generations the new one pushes out of the
        window is decided here, so retention does not depend on when the worker finishes."""
        if self._seal_job is not None:  # the previous one is still running (only with tiny generations)
            self._land()
        ids, self._recent = self._recent, set()
        kept = list(self._generations)
        while kept and sum(len(g) for g in kept) + len(ids) > self.capacity:
            kept.pop(0)
        self._seal_job = _Seal(ids, kept)

    def _land(self) -> None:
        """Wait for the seal in progress (if any) and take its generation and merged array."""
        job = self._seal_job
        if job is None:
            return
        job.wait()
        assert job.generation is not None and job.merged is not None
        self._generations = [*job.kept, job.generation]
        self._view = job.merged.data
        self._seal_job = None
        job.landed.set()

    # -- checkpoint -------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for the checkpoint file: each generation, then the recent set."""
        self._land()  # the checkpoint holds the state; a seal in progress finishes first
        out = {f"dedupe_gen_{i:04d}": g for i, g in enumerate(self._generations)}
        # Sorted by numpy, which lets go of the interpreter lock while it sorts: ``sorted()`` over a quarter
        # of a million Python ints held the lock for ~230 ms in one C call, and the checkpoint runs on a
        # worker thread precisely so that the HTTP probes are answered meanwhile.
        out["dedupe_recent"] = _sorted_ids(self._recent)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], capacity: int,
                    generation_size: int | None = None) -> DedupeMemory:
        m = cls(capacity, generation_size)
        for name in sorted(k for k in arrays if k.startswith("dedupe_gen_")):
            m._generations.append(np.asarray(arrays[name], dtype=np.uint64))
        m._recent = {int(v) for v in arrays.get("dedupe_recent", np.zeros(0, np.uint64))}
        m._view = _merged(m._generations).data
        return m
