"""Immutable router versions, the active-version pointer and training reports.

Layout per router (docs/contract.md §9), under ``<base_dir>/<router_id>/``::

    router-versions/versions/<version_id>/   model files + meta.json (never modified)
    router-versions/current.json             active version + audit trail
    router-versions/pinned-baseline.json     pinned baseline ({"version_id", "pinned_at"}), absent if none
    training-reports/<report_id>.json        one report per evaluation
    seen-trajectories.json                   batch ``cycle`` only (see :mod:`memabrad.store.seen`)
    .store.lock / daemon.lock                flock files (see :mod:`memabrad.store.lock`)

``meta.json`` holds ``version_id``, ``created_at`` (RFC 3339, ``Z``),
``report_id``, ``router_id``, ``files`` (``{name: sha256 hex}``), ``sha256``
(see :func:`model_sha256`) and the caller's ``extra`` keys at top level
(e.g. ``idempotency_key``). Version files are plain data: loading returns
bytes and runs nothing.

Every mutation holds the router's short write lock, so concurrent writers
(daemon, CLI, batch cycle) cannot corrupt the store; every file is replaced
atomically, so a crash at any moment leaves the old or the new state.

:class:`RouterVersionStore` is a thin facade over one module per concern:
:mod:`~memabrad.store.layout` (paths, id rules), :mod:`~memabrad.store.meta`
(``meta.json``, verification), :mod:`~memabrad.store.version_archive` (the
immutable versions), :mod:`~memabrad.store.pointer` (``current.json``),
:mod:`~memabrad.store.control` (pinned baseline, pause) and
:mod:`~memabrad.store.reports` (training reports). Callers keep one object and
one import path; the parts share a single write lock and clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memabrad.store.control import PromotionControl
from memabrad.store.errors import CorruptFileError as CorruptFileError
from memabrad.store.errors import CorruptVersionError as CorruptVersionError
from memabrad.store.errors import StoreWriteError as StoreWriteError
from memabrad.store.errors import UnknownReportError as UnknownReportError
from memabrad.store.errors import UnknownVersionError
from memabrad.store.layout import FILE_NAME_RE as FILE_NAME_RE
from memabrad.store.layout import META_FILE as META_FILE
from memabrad.store.layout import REPORT_ID_RE as REPORT_ID_RE
from memabrad.store.layout import ROUTER_ID_RE as ROUTER_ID_RE
from memabrad.store.layout import VERSION_ID_RE as VERSION_ID_RE
from memabrad.store.layout import StoreLayout
from memabrad.store.lock import StoreLock
from memabrad.store.meta import VersionMeta, format_rfc3339, model_sha256
from memabrad.store.meta import read_version_meta as read_version_meta
from memabrad.store.meta import verify_version_dir as verify_version_dir
from memabrad.store.pointer import CurrentPointer
from memabrad.store.reports import TrainingReports
from memabrad.store.version_archive import VersionArchive

__all__ = [
    "RouterVersionStore",
    "VersionMeta",
    "format_rfc3339",
    "model_sha256",
]


class RouterVersionStore:
    """One router's store: immutable versions, ``current.json``, the pinned baseline and reports.

    Read-only methods take no lock and never create anything, so ``status`` and
    ``versions`` work on a read-only or missing store.
    """

    def __init__(
        self,
        base_dir: str | Path = "artifacts",
        router_id: str = "default",
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.layout = layout = StoreLayout(Path(base_dir), router_id)
        self.base_dir = layout.base_dir
        self.router_id = layout.router_id
        self._clock = clock or (lambda: datetime.now(UTC))
        # Path attributes mirror the layout for callers that read them directly.
        self.router_dir = layout.router_dir
        self.versions_root = layout.versions_root
        self.versions_dir = layout.versions_dir
        self.current_path = layout.current_path
        self.pinned_baseline_path = layout.pinned_baseline_path
        self.control_path = layout.control_path
        self.reports_dir = layout.reports_dir
        self.seen_trajectories_path = layout.seen_trajectories_path
        self.case_index_path = layout.case_index_path
        self.lock_path = layout.lock_path
        self.daemon_lock_path = layout.daemon_lock_path
        self._write_lock = StoreLock(self.lock_path, purpose=f"store write, router {router_id}")
        self._versions = VersionArchive(layout, self._write_lock, self._clock)
        self._pointer = CurrentPointer(layout, self._write_lock, self._clock, self._versions, self.daemon_lock)
        self._control = PromotionControl(layout, self._write_lock, self._clock, self._versions)
        self._reports = TrainingReports(layout, self._write_lock)

    def __repr__(self) -> str:
        return f"RouterVersionStore({str(self.base_dir)!r}, {self.router_id!r})"

    # -- locks ---------------------------------------------------------------

    def write_lock(self) -> StoreLock:
        """The short write lock every mutation takes; hold it to group several mutations atomically."""
        return self._write_lock

    def daemon_lock(self) -> StoreLock:
        """A new lock on ``daemon.lock``; a running daemon holds it so local rollbacks are refused.

        Keep the returned object referenced for as long as the daemon runs.
        """
        return StoreLock(self.daemon_lock_path, purpose=f"memabrad daemon, router {self.router_id}")

    # -- versions (see VersionArchive) ---------------------------------------

    def version_dir(self, version_id: str) -> Path:
        """Where a version lives (it may not exist); malformed ids raise :class:`UnknownVersionError`."""
        return self._versions.version_dir(version_id)

    def has_version(self, version_id: str) -> bool:
        """True when a version directory with this id exists (it is not verified)."""
        return self._versions.has_version(version_id)

    def save_version(
        self,
        files: Mapping[str, bytes],
        *,
        report_id: str,
        created_at: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> VersionMeta:
        """Write a new immutable version and return its meta (it is not activated).

        A repeated ``idempotency_key`` returns the existing version and writes nothing.
        """
        return self._versions.save_version(
            files, report_id=report_id, created_at=created_at, extra=extra, idempotency_key=idempotency_key
        )

    def find_by_idempotency_key(self, key: str) -> VersionMeta | None:
        """The newest readable version saved with this idempotency key, or None."""
        return self._versions.find_by_idempotency_key(key)

    def get_version(self, version_id: str) -> VersionMeta:
        """Read a version's ``meta.json`` (files are not hashed; see :meth:`verify_version`)."""
        return self._versions.get_version(version_id)

    def load_version_files(self, version_id: str) -> dict[str, bytes]:
        """The version's model files, each checked against its sha256 in ``meta.json``.

        Raises :class:`UnknownVersionError` for an unknown id and
        :class:`CorruptVersionError` naming the offending file otherwise.
        """
        return self._versions.load_verified(version_id)[1]

    def verify_version(self, version_id: str) -> VersionMeta:
        """Check every file of a version against its meta; return the meta if all is well."""
        return self._versions.load_verified(version_id)[0]

    def list_versions(self) -> list[VersionMeta]:
        """All versions, newest first; an unreadable one is listed with ``corrupt`` set, not raised."""
        return self._versions.list_versions()

    # -- current.json (see CurrentPointer) -----------------------------------

    def get_current(self) -> dict[str, Any] | None:
        """The parsed ``current.json``, or None before the first activation."""
        return self._pointer.get_current()

    def active_version_id(self) -> str | None:
        """The active version's id, or None."""
        return self._pointer.active_version_id()

    def activate(
        self,
        version_id: str,
        *,
        source: str,
        benchmark: dict[str, Any] | None = None,
        report_id: str | None = None,
    ) -> dict[str, Any]:
        """Make a verified version the active one; repeating the last activation changes nothing."""
        return self._pointer.activate(version_id, source=source, benchmark=benchmark, report_id=report_id)

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

        With ``require_no_daemon``, :class:`StoreBusyError` while a daemon holds the store.
        """
        return self._pointer.rollback(
            version_id,
            trigger=trigger,
            request_id=request_id,
            requested_by=requested_by,
            reason=reason,
            require_no_daemon=require_no_daemon,
        )

    # -- pinned baseline and promotion control (see PromotionControl) --------

    def pin_baseline(self, version_id: str) -> dict[str, Any]:
        """Pin a (verified) version as the baseline challengers are compared with."""
        return self._control.pin_baseline(version_id)

    def unpin_baseline(self) -> str | None:
        """Remove the pin; return the id that was pinned (None if nothing was)."""
        return self._control.unpin_baseline()

    def pinned_baseline(self) -> str | None:
        """The pinned baseline version id, or None."""
        return self._control.pinned_baseline()

    def baseline_version_id(self, override: str | None = None) -> str | None:
        """The baseline to evaluate against: ``override``, else the pinned version, else the active one."""
        if override is not None:
            if not self.has_version(override):
                raise UnknownVersionError(override, self.router_dir)
            return override
        return self.pinned_baseline() or self.active_version_id()

    def promotions_paused(self) -> bool:
        """True after ``pause_promotions``: evaluations still run and report, nothing is promoted."""
        return self._control.promotions_paused()

    def set_promotions_paused(self, paused: bool, *, requested_by: str | None = None) -> None:
        """Persist the pause flag in ``control.json`` so it survives restarts and is seen by ``cycle``."""
        self._control.set_promotions_paused(paused, requested_by=requested_by)

    # -- training reports (see TrainingReports) ------------------------------

    def report_path(self, report_id: str) -> Path:
        """Where a report with this id is stored (``ValueError`` for an id unsafe as a file name)."""
        return self._reports.report_path(report_id)

    def save_report(self, report: Mapping[str, Any]) -> Path:
        """Write ``training-reports/<report_id>.json`` atomically; saving the same id again overwrites."""
        return self._reports.save_report(report)

    def load_report(self, report_id: str) -> dict[str, Any]:
        """A saved report; :class:`UnknownReportError` if absent, :class:`CorruptFileError` if unreadable."""
        return self._reports.load_report(report_id)

    def list_reports(self) -> list[dict[str, Any]]:
        """All reports, newest first; an unreadable one is listed as ``{"report_id", "corrupt"}``."""
        return self._reports.list_reports()

    def last_report(self) -> dict[str, Any] | None:
        """The newest readable report, or None."""
        return self._reports.last_report()
