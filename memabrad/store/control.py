"""Operator controls that steer promotion without moving the pointer.

``pinned-baseline.json`` fixes the version challengers are compared with, and
``control.json`` pauses promotions. Both live on disk rather than in memory so
they survive restarts and are honoured by the daemon and a batch ``cycle`` alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memabrad.store.atomic import atomic_write_json, describe_oserror, fsync_dir, read_json
from memabrad.store.errors import CorruptFileError, StoreWriteError
from memabrad.store.layout import StoreLayout
from memabrad.store.lock import StoreLock
from memabrad.store.meta import format_rfc3339
from memabrad.store.version_archive import VersionArchive

__all__ = ["PromotionControl"]


@dataclass
class PromotionControl:
    """The pinned baseline and the promotions-paused flag of one router."""

    layout: StoreLayout
    write_lock: StoreLock
    clock: Callable[[], datetime]
    archive: VersionArchive

    def pin_baseline(self, version_id: str) -> dict[str, Any]:
        """Pin a (verified) version as the baseline challengers are compared with."""
        with self.write_lock:
            self.archive.load_verified(version_id)
            pinned = {"version_id": version_id, "pinned_at": format_rfc3339(self.clock())}
            atomic_write_json(self.layout.pinned_baseline_path, pinned)
            return pinned

    def unpin_baseline(self) -> str | None:
        """Remove the pin; return the id that was pinned (None if nothing was)."""
        path = self.layout.pinned_baseline_path
        with self.write_lock:
            previous = self.pinned_baseline()
            try:
                path.unlink()
                fsync_dir(self.layout.versions_root)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreWriteError(path, describe_oserror(exc)) from exc
            return previous

    def pinned_baseline(self) -> str | None:
        """The pinned baseline version id, or None."""
        path = self.layout.pinned_baseline_path
        try:
            data = read_json(path)
        except FileNotFoundError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("version_id"), str):
            raise CorruptFileError(path, "expected an object with a 'version_id' string")
        return data["version_id"]

    def promotions_paused(self) -> bool:
        """True after ``pause_promotions``: evaluations still run and report, nothing is promoted."""
        path = self.layout.control_path
        try:
            data = read_json(path)
        except FileNotFoundError:
            return False
        if not isinstance(data, dict):
            raise CorruptFileError(path, "expected an object")
        return bool(data.get("promotions_paused", False))

    def set_promotions_paused(self, paused: bool, *, requested_by: str | None = None) -> None:
        """Persist the pause flag in ``control.json`` so it survives restarts and is seen by ``cycle``."""
        with self.write_lock:
            atomic_write_json(self.layout.control_path, {
                "promotions_paused": bool(paused),
                "changed_at": format_rfc3339(self.clock()),
                "requested_by": requested_by,
            })
