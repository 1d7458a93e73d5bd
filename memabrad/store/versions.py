"""Immutable router versions, the active-version pointer and training reports.

Layout per router (CONTRACT §9), under ``<base_dir>/<router_id>/``::

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
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memabrad.store.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    describe_oserror,
    dumps_json,
    fsync_dir,
    read_json,
)
from memabrad.store.errors import (
    CorruptFileError,
    CorruptVersionError,
    StoreWriteError,
    UnknownReportError,
    UnknownVersionError,
)
from memabrad.store.lock import StoreLock

__all__ = [
    "RouterVersionStore",
    "VersionMeta",
    "format_rfc3339",
    "model_sha256",
]

ROUTER_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
VERSION_ID_RE = re.compile(r"^(\d{8}-\d{6})(?:-([1-9]\d{0,8}))?$")
REPORT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
META_FILE = "meta.json"
_TMP_PREFIX = ".tmp-"
_CORE_META_KEYS = frozenset(
    {"version_id", "created_at", "report_id", "router_id", "files", "sha256", "corrupt"}
)


def format_rfc3339(dt: datetime) -> str:
    """UTC RFC 3339 with ``Z``; microseconds only when present (keeps ids and stamps short)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"datetime must carry a time zone, got naive {dt.isoformat()}")
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if dt.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def model_sha256(file_hashes: Mapping[str, str]) -> str:
    """The version's ``sha256``: one digest standing for all of its model data.

    With exactly one model file it is that file's sha256, so it can be checked
    with ``sha256sum``. Otherwise it is the sha256 of the concatenation, in
    sorted file-name order, of ``name + "\\0" + sha256hex(file) + "\\n"``.
    """
    if not file_hashes:
        raise ValueError("a router version needs at least one model file")
    if len(file_hashes) == 1:
        return next(iter(file_hashes.values()))
    digest = hashlib.sha256()
    for name in sorted(file_hashes):
        digest.update(f"{name}\0{file_hashes[name]}\n".encode())
    return digest.hexdigest()


def _version_sort_key(version_id: str) -> tuple[str, int]:
    """Order ids by time, then suffix numerically (``-10`` after ``-9``, which plain sorting breaks)."""
    match = VERSION_ID_RE.match(version_id)
    if match is None:
        return ("", 0)
    return (match.group(1), int(match.group(2) or 1))


def _check_router_id(router_id: str) -> str:
    if not isinstance(router_id, str) or not ROUTER_ID_RE.match(router_id) or router_id in {".", ".."}:
        raise ValueError(f"invalid router_id {router_id!r}: expected 1-64 chars of [A-Za-z0-9._-]")
    return router_id


def _check_report_id(report_id: Any) -> str:
    if not isinstance(report_id, str) or not REPORT_ID_RE.match(report_id):
        raise ValueError(
            f"invalid report_id {report_id!r}: expected 1-128 chars of [A-Za-z0-9._:-], "
            "starting with a letter or digit"
        )
    return report_id


def _check_file_name(name: Any) -> str:
    if not isinstance(name, str) or not FILE_NAME_RE.match(name) or name == META_FILE:
        raise ValueError(
            f"invalid model file name {name!r}: expected a plain name of [A-Za-z0-9._-] "
            f"(not starting with '.', not {META_FILE!r})"
        )
    return name


@dataclass(frozen=True)
class VersionMeta:
    """A version's ``meta.json``; ``corrupt`` is set (and the rest may be empty) when it is unreadable."""

    version_id: str
    created_at: str
    report_id: str | None
    router_id: str
    files: dict[str, str] = field(default_factory=dict)
    sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    corrupt: str | None = None

    @property
    def idempotency_key(self) -> str | None:
        """The key a writer used to make :meth:`RouterVersionStore.save_version` idempotent."""
        key = self.extra.get("idempotency_key")
        return key if isinstance(key, str) else None

    def to_dict(self) -> dict[str, Any]:
        """The ``meta.json`` object: core keys plus ``extra`` at top level (``corrupt`` only when set)."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            version_id=self.version_id,
            created_at=self.created_at,
            report_id=self.report_id,
            router_id=self.router_id,
            files=dict(self.files),
            sha256=self.sha256,
        )
        if self.corrupt is not None:
            out["corrupt"] = self.corrupt
        return out

    @classmethod
    def from_dict(cls, data: Any) -> VersionMeta:
        """Parse a ``meta.json`` object; raise ``ValueError`` saying what is wrong with it."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        for key in ("version_id", "created_at", "router_id", "sha256"):
            if not isinstance(data.get(key), str):
                raise ValueError(f"field {key!r} is missing or not a string")
        report_id = data.get("report_id")
        if report_id is not None and not isinstance(report_id, str):
            raise ValueError("field 'report_id' is not a string")
        files = data.get("files")
        if not isinstance(files, dict) or not files:
            raise ValueError("field 'files' is missing or empty")
        for name, digest in files.items():
            _check_file_name(name)
            if not isinstance(digest, str) or not _SHA256_RE.match(digest):
                raise ValueError(f"files[{name!r}] is not a sha256 hex digest")
        extra = {k: v for k, v in data.items() if k not in _CORE_META_KEYS}
        return cls(
            version_id=data["version_id"],
            created_at=data["created_at"],
            report_id=report_id,
            router_id=data["router_id"],
            files=dict(files),
            sha256=data["sha256"],
            extra=extra,
        )


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
        self.base_dir = Path(base_dir)
        self.router_id = _check_router_id(router_id)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.router_dir = self.base_dir / router_id
        self.versions_root = self.router_dir / "router-versions"
        self.versions_dir = self.versions_root / "versions"
        self.current_path = self.versions_root / "current.json"
        self.pinned_baseline_path = self.versions_root / "pinned-baseline.json"
        self.control_path = self.router_dir / "control.json"
        self.reports_dir = self.router_dir / "training-reports"
        self.seen_trajectories_path = self.router_dir / "seen-trajectories.json"
        self.case_index_path = self.router_dir / "case-index.json"
        self.lock_path = self.router_dir / ".store.lock"
        self.daemon_lock_path = self.router_dir / "daemon.lock"
        self._write_lock = StoreLock(self.lock_path, purpose=f"store write, router {router_id}")

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

    # -- versions ------------------------------------------------------------

    def version_dir(self, version_id: str) -> Path:
        """Where a version lives (it may not exist); malformed ids raise :class:`UnknownVersionError`."""
        if not isinstance(version_id, str) or not VERSION_ID_RE.match(version_id):
            raise UnknownVersionError(str(version_id), self.router_dir)
        return self.versions_dir / version_id

    def has_version(self, version_id: str) -> bool:
        """True when a version directory with this id exists (it is not verified)."""
        try:
            return self.version_dir(version_id).is_dir()
        except UnknownVersionError:
            return False

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

        With an ``idempotency_key`` that an existing version already carries,
        that version is returned and nothing is written, so a run repeated after
        a crash does not duplicate versions. The directory is built under
        ``versions/.tmp-*`` and renamed into place, so it appears complete or not at all.
        """
        checked: dict[str, bytes] = {}
        for name, data in files.items():
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"model file {name!r} must be bytes, got {type(data).__name__}")
            checked[_check_file_name(name)] = bytes(data)
        if not checked:
            raise ValueError("a router version needs at least one model file")
        if not isinstance(report_id, str):
            raise TypeError(f"report_id must be a string, got {type(report_id).__name__}")
        extra_dict = dict(extra or {})
        reserved = sorted(_CORE_META_KEYS.intersection(extra_dict))
        if reserved:
            raise ValueError(f"extra may not set reserved meta.json keys {reserved}")
        if idempotency_key is not None:
            if extra_dict.get("idempotency_key", idempotency_key) != idempotency_key:
                raise ValueError("idempotency_key argument and extra['idempotency_key'] disagree")
            extra_dict["idempotency_key"] = idempotency_key
        key = extra_dict.get("idempotency_key")
        created = created_at if created_at is not None else self._clock()
        created_str = format_rfc3339(created)

        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in checked.items()}
        with self._write_lock:
            if key is not None:
                existing = self.find_by_idempotency_key(key)
                if existing is not None:
                    return existing
            self._ensure_dir(self.versions_dir)
            self._remove_stale_temp_dirs()
            version_id = self._allocate_version_id(created)
            meta = VersionMeta(
                version_id=version_id,
                created_at=created_str,
                report_id=report_id,
                router_id=self.router_id,
                files=hashes,
                sha256=model_sha256(hashes),
                extra=extra_dict,
            )
            meta_bytes = dumps_json(meta.to_dict())  # before touching disk: NaN etc. fail cleanly
            self._write_version_dir(version_id, checked, meta_bytes)
            return meta

    def find_by_idempotency_key(self, key: str) -> VersionMeta | None:
        """The newest readable version saved with this idempotency key, or None."""
        for meta in self.list_versions():
            if meta.corrupt is None and meta.idempotency_key == key:
                return meta
        return None

    def get_version(self, version_id: str) -> VersionMeta:
        """Read a version's ``meta.json`` (files are not hashed; see :meth:`verify_version`)."""
        vdir = self.version_dir(version_id)
        if not vdir.is_dir():
            raise UnknownVersionError(version_id, self.router_dir)
        return read_version_meta(vdir)

    def load_version_files(self, version_id: str) -> dict[str, bytes]:
        """The version's model files, each checked against its sha256 in ``meta.json``.

        Raises :class:`UnknownVersionError` for an unknown id and
        :class:`CorruptVersionError` naming the offending file otherwise.
        """
        return self._load_verified(version_id)[1]

    def verify_version(self, version_id: str) -> VersionMeta:
        """Check every file of a version against its meta; return the meta if all is well."""
        return self._load_verified(version_id)[0]

    def list_versions(self) -> list[VersionMeta]:
        """All versions, newest first; an unreadable one is listed with ``corrupt`` set, not raised."""
        try:
            entries = list(os.scandir(self.versions_dir))
        except FileNotFoundError:
            return []
        out: list[VersionMeta] = []
        for entry in entries:
            if not VERSION_ID_RE.match(entry.name) or not entry.is_dir(follow_symlinks=False):
                continue  # temp dirs (.tmp-*) and strays
            try:
                out.append(self.get_version(entry.name))
            except CorruptVersionError as exc:
                out.append(
                    VersionMeta(
                        version_id=entry.name,
                        created_at="",
                        report_id=None,
                        router_id=self.router_id,
                        corrupt=str(exc),
                    )
                )
        out.sort(key=lambda m: _version_sort_key(m.version_id), reverse=True)
        return out

    # -- current.json --------------------------------------------------------

    def get_current(self) -> dict[str, Any] | None:
        """The parsed ``current.json``, or None before the first activation."""
        try:
            data = read_json(self.current_path)
        except FileNotFoundError:
            return None
        if not isinstance(data, dict):
            raise CorruptFileError(self.current_path, f"expected a JSON object, got {type(data).__name__}")
        version_id = data.get("version_id")
        if version_id is not None and not isinstance(version_id, str):
            raise CorruptFileError(self.current_path, "field 'version_id' is not a string")
        if not isinstance(data.get("history", []), list):
            raise CorruptFileError(self.current_path, "field 'history' is not a list")
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
        with self._write_lock:
            meta, _ = self._load_verified(version_id)
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
            now = format_rfc3339(self._clock())
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
            atomic_write_json(self.current_path, new)
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

        ``trigger`` is ``cli``, ``admin`` or ``guard`` (CONTRACT §3). An unknown
        or corrupt target raises and changes nothing. With
        ``require_no_daemon`` the daemon lock is tried without waiting (and held
        for the duration), so a CLI rollback cannot race a running daemon:
        :class:`StoreBusyError` when one holds it.
        """
        if not self.has_version(version_id):
            raise UnknownVersionError(version_id, self.router_dir)  # before any lock file is created
        with contextlib.ExitStack() as stack:
            if require_no_daemon:
                daemon = self.daemon_lock().acquire(blocking=False)
                stack.callback(daemon.release)
            stack.enter_context(self._write_lock)
            meta, _ = self._load_verified(version_id)
            current = self.get_current()
            prior = current["version_id"] if current else None
            history = list(current.get("history", [])) if current else []
            now = format_rfc3339(self._clock())
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
            atomic_write_json(self.current_path, new)
            return new

    # -- pinned baseline -----------------------------------------------------

    def pin_baseline(self, version_id: str) -> dict[str, Any]:
        """Pin a (verified) version as the baseline challengers are compared with."""
        with self._write_lock:
            self._load_verified(version_id)
            pinned = {"version_id": version_id, "pinned_at": format_rfc3339(self._clock())}
            atomic_write_json(self.pinned_baseline_path, pinned)
            return pinned

    def unpin_baseline(self) -> str | None:
        """Remove the pin; return the id that was pinned (None if nothing was)."""
        with self._write_lock:
            previous = self.pinned_baseline()
            try:
                self.pinned_baseline_path.unlink()
                fsync_dir(self.versions_root)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreWriteError(self.pinned_baseline_path, describe_oserror(exc)) from exc
            return previous

    def pinned_baseline(self) -> str | None:
        """The pinned baseline version id, or None."""
        try:
            data = read_json(self.pinned_baseline_path)
        except FileNotFoundError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("version_id"), str):
            raise CorruptFileError(self.pinned_baseline_path, "expected an object with a 'version_id' string")
        return data["version_id"]

    def baseline_version_id(self, override: str | None = None) -> str | None:
        """The baseline to evaluate against: ``override``, else the pinned version, else the active one."""
        if override is not None:
            if not self.has_version(override):
                raise UnknownVersionError(override, self.router_dir)
            return override
        return self.pinned_baseline() or self.active_version_id()

    # -- promotion control ---------------------------------------------------

    def promotions_paused(self) -> bool:
        """True after ``pause_promotions``: evaluations still run and report, nothing is promoted."""
        try:
            data = read_json(self.control_path)
        except FileNotFoundError:
            return False
        if not isinstance(data, dict):
            raise CorruptFileError(self.control_path, "expected an object")
        return bool(data.get("promotions_paused", False))

    def set_promotions_paused(self, paused: bool, *, requested_by: str | None = None) -> None:
        """Persist the pause flag in ``control.json`` so it survives restarts and is seen by ``cycle``."""
        with self._write_lock:
            atomic_write_json(self.control_path, {
                "promotions_paused": bool(paused),
                "changed_at": format_rfc3339(self._clock()),
                "requested_by": requested_by,
            })

    # -- training reports ----------------------------------------------------

    def report_path(self, report_id: str) -> Path:
        """Where a report with this id is stored (``ValueError`` for an id unsafe as a file name)."""
        return self.reports_dir / f"{_check_report_id(report_id)}.json"

    def save_report(self, report: Mapping[str, Any]) -> Path:
        """Write ``training-reports/<report_id>.json`` atomically; saving the same id again overwrites."""
        if not isinstance(report, Mapping):
            raise TypeError(f"report must be a mapping, got {type(report).__name__}")
        path = self.reports_dir / f"{_check_report_id(report.get('report_id'))}.json"
        data = dumps_json(dict(report))
        with self._write_lock:
            atomic_write_bytes(path, data)
        return path

    def load_report(self, report_id: str) -> dict[str, Any]:
        """A saved report; :class:`UnknownReportError` if absent, :class:`CorruptFileError` if unreadable."""
        try:
            path = self.report_path(report_id)
        except ValueError:
            raise UnknownReportError(str(report_id)) from None
        try:
            data = read_json(path)
        except FileNotFoundError:
            raise UnknownReportError(report_id, path) from None
        if not isinstance(data, dict):
            raise CorruptFileError(path, f"expected a JSON object, got {type(data).__name__}")
        return data

    def list_reports(self) -> list[dict[str, Any]]:
        """All reports, newest first by ``created_at`` then id.

        An unreadable report is listed as ``{"report_id": ..., "corrupt": reason}``.
        """
        try:
            entries = list(os.scandir(self.reports_dir))
        except FileNotFoundError:
            return []
        reports: list[dict[str, Any]] = []
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(".json") or not entry.is_file():
                continue
            report_id = entry.name[: -len(".json")]
            try:
                data = read_json(entry.path)
                if not isinstance(data, dict):
                    raise CorruptFileError(entry.path, f"expected a JSON object, got {type(data).__name__}")
            except (CorruptFileError, OSError) as exc:
                reports.append({"report_id": report_id, "corrupt": str(exc)})
                continue
            reports.append(data)
        reports.sort(key=_report_sort_key, reverse=True)
        return reports

    def last_report(self) -> dict[str, Any] | None:
        """The newest readable report, or None."""
        for report in self.list_reports():
            if "corrupt" not in report:
                return report
        return None

    # -- internals -----------------------------------------------------------

    def _load_verified(self, version_id: str) -> tuple[VersionMeta, dict[str, bytes]]:
        vdir = self.version_dir(version_id)
        if not vdir.is_dir():
            raise UnknownVersionError(version_id, self.router_dir)
        return verify_version_dir(vdir)

    def _allocate_version_id(self, created: datetime) -> str:
        base = created.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        candidate, n = base, 1
        while (self.versions_dir / candidate).exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _remove_stale_temp_dirs(self) -> None:
        """Temp dirs exist only while a writer holds the lock, so any we see under it are crash leftovers."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.versions_dir):
                if entry.name.startswith(_TMP_PREFIX):
                    shutil.rmtree(entry.path, ignore_errors=True)

    def _write_version_dir(self, version_id: str, files: dict[str, bytes], meta_bytes: bytes) -> None:
        final = self.versions_dir / version_id
        tmp = self.versions_dir / f"{_TMP_PREFIX}{version_id}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            for name, data in [*files.items(), (META_FILE, meta_bytes)]:
                with open(tmp / name, "xb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            fsync_dir(tmp)
            os.rename(tmp, final)
            fsync_dir(self.versions_dir)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreWriteError(final, describe_oserror(exc)) from exc

    @staticmethod
    def _ensure_dir(path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreWriteError(path, describe_oserror(exc)) from exc


def _report_sort_key(report: dict[str, Any]) -> tuple[float, str]:
    created = report.get("created_at")
    ts = -math.inf
    if isinstance(created, str):
        try:
            dt = datetime.fromisoformat(created)
        except ValueError:
            pass
        else:
            ts = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    return (ts, str(report.get("report_id", "")))


def read_version_meta(vdir: Path) -> VersionMeta:
    """A version directory's ``meta.json``, checked for consistency (files not hashed)."""
    version_id = vdir.name
    meta_path = vdir / META_FILE
    try:
        raw = read_json(meta_path)
    except FileNotFoundError:
        raise CorruptVersionError(meta_path, "meta.json is missing", version_id=version_id) from None
    except CorruptFileError as exc:
        raise CorruptVersionError(meta_path, exc.reason, version_id=version_id) from exc
    except OSError as exc:
        raise CorruptVersionError(meta_path, describe_oserror(exc), version_id=version_id) from exc
    try:
        meta = VersionMeta.from_dict(raw)
    except ValueError as exc:
        raise CorruptVersionError(meta_path, str(exc), version_id=version_id) from exc
    if meta.version_id != version_id:
        raise CorruptVersionError(meta_path, f"meta.json says version_id {meta.version_id!r}", version_id=version_id)
    if model_sha256(meta.files) != meta.sha256:
        raise CorruptVersionError(meta_path, "sha256 does not match the files' digests", version_id=version_id)
    return meta


def verify_version_dir(vdir: Path) -> tuple[VersionMeta, dict[str, bytes]]:
    """Meta and model files of a version directory, every file checked against its sha256.

    Works on any copy of a version directory, which is what serving clients load.
    """
    vdir = Path(vdir)
    if not vdir.is_dir():
        raise UnknownVersionError(vdir.name, vdir.parent)
    meta = read_version_meta(vdir)
    version_id = meta.version_id
    out: dict[str, bytes] = {}
    for name, expected in sorted(meta.files.items()):
        path = vdir / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CorruptVersionError(path, "model file is missing", version_id=version_id) from None
        except OSError as exc:
            raise CorruptVersionError(path, describe_oserror(exc), version_id=version_id) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise CorruptVersionError(
                path,
                f"sha256 mismatch: meta.json says {expected}, file has {actual} ({len(data)} bytes)",
                version_id=version_id,
            )
        out[name] = data
    return meta, out
