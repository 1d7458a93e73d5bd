"""The batch ``cycle``'s memory of trajectory ids it has already learned from.

Stored as ``{"ids": [...]}`` (sorted, so the file is deterministic) in
``seen-trajectories.json``; saved atomically, so a crash mid-save keeps the
previous set and the worst case is re-reading a batch, never a torn file.
Not locked: one batch cycle per store at a time (the cycle can hold
:meth:`RouterVersionStore.write_lock` around load/save if it needs more).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from memabrad.store.atomic import atomic_write_json, read_json
from memabrad.store.errors import CorruptFileError

__all__ = ["SeenTrajectoryStore"]


class SeenTrajectoryStore:
    """A set of trajectory ids persisted as JSON; loaded lazily on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._ids: set[str] | None = None

    def load(self) -> SeenTrajectoryStore:
        """(Re)read the file; a missing file is an empty set, a bad one a :class:`CorruptFileError`."""
        try:
            data = read_json(self.path)
        except FileNotFoundError:
            self._ids = set()
            return self
        ids = data.get("ids") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise CorruptFileError(self.path, 'expected {"ids": [strings]}')
        self._ids = set(ids)
        return self

    @property
    def ids(self) -> frozenset[str]:
        """A snapshot of the ids seen so far."""
        return frozenset(self._loaded())

    def __contains__(self, trajectory_id: object) -> bool:
        return trajectory_id in self._loaded()

    def __len__(self) -> int:
        return len(self._loaded())

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._loaded()))

    def add_many(self, ids: Iterable[str]) -> int:
        """Add ids in memory (call :meth:`save` to persist); return how many were new."""
        seen = self._loaded()
        before = len(seen)
        for trajectory_id in ids:
            if not isinstance(trajectory_id, str):
                raise TypeError(f"trajectory ids are strings, got {type(trajectory_id).__name__}")
            seen.add(trajectory_id)
        return len(seen) - before

    def save(self) -> None:
        """Write the set atomically (``StoreWriteError`` on failure, old file intact)."""
        atomic_write_json(self.path, {"ids": sorted(self._loaded())})

    def _loaded(self) -> set[str]:
        if self._ids is None:
            self.load()
        assert self._ids is not None
        return self._ids
