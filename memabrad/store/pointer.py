"""``current.json``: which version is active, and the audit trail of how it got there.

The pointer is the only mutable part of version management: versions never
change, so activating or rolling back is one atomic rewrite of this file. Every
rewrite carries the full ``history`` forward, so the trail survives in one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memabrad.store.atomic import atomic_write_json, read_json
from memabrad.store.errors import CorruptFileError, UnknownVersionError
from memabrad.store.layout import StoreLayout
from memabrad.store.lock import StoreLock
from memabrad.store.meta import format_rfc3339
from memabrad.store.version_archive import VersionArchive

__all__ = ["CurrentPointer"]


@dataclass
class CurrentPointer:
    """Read and move the active-version pointer; only verified versions can become active."""

    layout: StoreLayout
    write_lock: StoreLock
    clock: Callable[[], datetime]
    archive: VersionArchive
    daemon_lock: Callable[[], StoreLock]

    def get_current(self) -> dict[str, Any] | None:
        """The parsed ``current.json``, or None before the first activation."""
        path = self.layout.current_path
        try:
            data = read_json(path)
        except FileNotFoundError:
            return None
        if not isinstance(data, dict):
            raise CorruptFileError(path, f"expected a JSON object, got {type(data).__name__}")
        version_id = data.get("version_id")
        if version_id is not None and not isinstance(version_id, str):
            raise CorruptFileError(path, "field 'version_id' is not a string")
        if not isinstance(data.get("history", []), list):
            raise CorruptFileError(path, "field 'history' is not a list")
        return data if version_id is not None else None

    def active_version_id(self) -> str | None:
        """The active version's id, or None."""
        current = self.get_current()
        return current["version_id"] if current else None

    def activate(
        self,
        version_id: str,
        *,
        source: str,
        benchmark: dict[str, Any] | None = None,
        report_id: str | None = None,
    ) -> dict[str, Any]:
        """Make a verified version the active one and append an ``activate`` history entry.

        ``report_id`` defaults to the version's own. Repeating the last
        activation (same version, source and report) changes nothing, so a
        promotion replayed after a crash does not add a duplicate entry.
        """
        with self.write_lock:
            meta, _ = self.archive.load_verified(version_id)
            if report_id is None:
                report_id = meta.report_id
            current = self.get_current()
            history = list(current.get("history", [])) if current else []
            prior = current["version_id"] if current else None
            if current and prior == version_id and history:
                last = history[-1]
                if (
                    isinstance(last, dict)
                    and last.get("action") == "activate"
                    and last.get("to") == version_id
                    and last.get("source") == source
                    and last.get("report_id") == report_id
                ):
                    return current
            now = format_rfc3339(self.clock())
            history.append(
                {
                    "action": "activate",
                    "from": prior,
                    "to": version_id,
                    "at": now,
                    "source": source,
                    "report_id": report_id,
                }
            )
            new = {
                "version_id": version_id,
                "activated_at": now,
                "promotion_source": source,
                "benchmark_summary": benchmark,
                "report_id": report_id,
                "prior_version_id": prior,
                "rollback_from": None,
                "rolled_back_at": None,
                "history": history,
            }
            atomic_write_json(self.layout.current_path, new)
            return new

    def rollback(
        self,
        version_id: str,
        *,
        trigger: str = "cli",
        request_id: str | None = None,
        requested_by: str | None = None,
        reason: str | None = None,
        require_no_daemon: bool = False,
    ) -> dict[str, Any]:
        """Make an older (verified) version active again, keeping the audit trail in ``current.json``.

        ``trigger`` is ``cli``, ``admin`` or ``guard`` (docs/contract.md §3). An unknown
        or corrupt target raises and changes nothing. With
        ``require_no_daemon`` the daemon lock is tried without waiting (and held
        for the duration), so a CLI rollback cannot race a running daemon:
        :class:`StoreBusyError` when one holds it.
        """
        if not self.archive.has_version(version_id):
            raise UnknownVersionError(version_id, self.layout.router_dir)  # before any lock file is created
        with contextlib.ExitStack() as stack:
            if require_no_daemon:
                daemon = self.daemon_lock().acquire(blocking=False)
                stack.callback(daemon.release)
            stack.enter_context(self.write_lock)
            meta, _ = self.archive.load_verified(version_id)
            current = self.get_current()
            prior = current["version_id"] if current else None
            history = list(current.get("history", [])) if current else []
            now = format_rfc3339(self.clock())
            history.append(
                {
                    "action": "rollback",
                    "from": prior,
                    "to": version_id,
                    "at": now,
                    "trigger": trigger,
                    "request_id": request_id,
                    "requested_by": requested_by,
                    "reason": reason,
                }
            )
            new = {
                "version_id": version_id,
                "activated_at": now,
                "promotion_source": "rollback",
                "benchmark_summary": None,
                "report_id": meta.report_id,
                "prior_version_id": prior,
                "rollback_from": prior,
                "rolled_back_at": now,
                "history": history,
            }
            atomic_write_json(self.layout.current_path, new)
            return new
