"""The ``versions/`` directory: immutable router versions, written once and never modified.

A version is built under ``versions/.tmp-*`` and renamed into place, so it
appears complete or not at all; a crash leaves only a temp dir, which the next
writer removes under the lock. Listing never raises on a damaged version, so
one bad directory cannot hide the others from ``status`` or a rollback.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memabrad.store.atomic import describe_oserror, dumps_json, fsync_dir
from memabrad.store.errors import CorruptVersionError, StoreWriteError, UnknownVersionError
from memabrad.store.layout import META_FILE, TMP_PREFIX, VERSION_ID_RE, StoreLayout, check_file_name, version_sort_key
from memabrad.store.lock import StoreLock
from memabrad.store.meta import (
    CORE_META_KEYS,
    VersionMeta,
    format_rfc3339,
    model_sha256,
    read_version_meta,
    verify_version_dir,
)

__all__ = ["VersionArchive", "ensure_dir"]


def ensure_dir(path: Path) -> None:
    """``mkdir -p`` that reports failure as :class:`StoreWriteError`, naming the directory."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreWriteError(path, describe_oserror(exc)) from exc


@dataclass
class VersionArchive:
    """Save, find, list and verify one router's immutable versions.

    Writes take the router's shared write lock; reads take none and create
    nothing, so they work on a read-only or missing store.
    """

    layout: StoreLayout
    write_lock: StoreLock
    clock: Callable[[], datetime]
    # Readable metas by directory name, with the (dir inode, meta.json mtime and size) they were read
    # at: versions are immutable, so a listing stats each version and parses only new or changed ones.
    # Every promotion lists the versions (idempotency), and parsing all of them grew with history.
    _metas: dict[str, tuple[tuple[int, int, int], VersionMeta]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def version_dir(self, version_id: str) -> Path:
        """Where a version lives (it may not exist); malformed ids raise :class:`UnknownVersionError`."""
        if not isinstance(version_id, str) or not VERSION_ID_RE.match(version_id):
            raise UnknownVersionError(str(version_id), self.layout.router_dir)
        return self.layout.versions_dir / version_id

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
        a crash does not duplicate versions. Arguments are checked and files
        hashed before the lock is taken, so bad input never blocks other writers.
        """
        checked: dict[str, bytes] = {}
        for name, data in files.items():
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"model file {name!r} must be bytes, got {type(data).__name__}")
            checked[check_file_name(name)] = bytes(data)
        if not checked:
            raise ValueError("a router version needs at least one model file")
        if not isinstance(report_id, str):
            raise TypeError(f"report_id must be a string, got {type(report_id).__name__}")
        extra_dict = dict(extra or {})
        reserved = sorted(CORE_META_KEYS.intersection(extra_dict))
        if reserved:
            raise ValueError(f"extra may not set reserved meta.json keys {reserved}")
        if idempotency_key is not None:
            if extra_dict.get("idempotency_key", idempotency_key) != idempotency_key:
                raise ValueError("idempotency_key argument and extra['idempotency_key'] disagree")
            extra_dict["idempotency_key"] = idempotency_key
        key = extra_dict.get("idempotency_key")
        created = created_at if created_at is not None else self.clock()
        created_str = format_rfc3339(created)

        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in checked.items()}
        with self.write_lock:
            if key is not None:
                existing = self.find_by_idempotency_key(key)
                if existing is not None:
                    return existing
            ensure_dir(self.layout.versions_dir)
            self._remove_stale_temp_dirs()
            version_id = self._allocate_version_id(created)
            meta = VersionMeta(
                version_id=version_id,
                created_at=created_str,
                report_id=report_id,
                router_id=self.layout.router_id,
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
        """Read a version's ``meta.json`` (files are not hashed; see :meth:`load_verified`)."""
        vdir = self.version_dir(version_id)
        if not vdir.is_dir():
            raise UnknownVersionError(version_id, self.layout.router_dir)
        return read_version_meta(vdir)

    def load_verified(self, version_id: str) -> tuple[VersionMeta, dict[str, bytes]]:
        """Meta and model files, every file checked against its sha256 before anyone may use it."""
        vdir = self.version_dir(version_id)
        if not vdir.is_dir():
            raise UnknownVersionError(version_id, self.layout.router_dir)
        return verify_version_dir(vdir)

    def list_versions(self) -> list[VersionMeta]:
        """All versions, newest first; an unreadable one is listed with ``corrupt`` set, not raised."""
        try:
            entries = list(os.scandir(self.layout.versions_dir))
        except FileNotFoundError:
            return []
        out: list[VersionMeta] = []
        known = self._metas
        seen: set[str] = set()
        for entry in entries:
            if not VERSION_ID_RE.match(entry.name) or not entry.is_dir(follow_symlinks=False):
                continue  # temp dirs (.tmp-*) and strays
            seen.add(entry.name)
            try:
                st = os.stat(os.path.join(entry.path, META_FILE))
                stamp = (entry.inode(), st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None  # missing or unreadable meta.json: get_version says why
            cached = known.get(entry.name)
            if stamp is not None and cached is not None and cached[0] == stamp:
                out.append(cached[1])
                continue
            try:
                meta = self.get_version(entry.name)
                if stamp is not None:
                    known[entry.name] = (stamp, meta)
                out.append(meta)
            except CorruptVersionError as exc:
                known.pop(entry.name, None)
                out.append(
                    VersionMeta(
                        version_id=entry.name,
                        created_at="",
                        report_id=None,
                        router_id=self.layout.router_id,
                        corrupt=str(exc),
                    )
                )
        for gone in known.keys() - seen:
            del known[gone]
        out.sort(key=lambda m: version_sort_key(m.version_id), reverse=True)
        return out

    def _allocate_version_id(self, created: datetime) -> str:
        """Second-resolution id from the creation time, suffixed ``-2``, ``-3``... on collision."""
        base = created.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        candidate, n = base, 1
        while (self.layout.versions_dir / candidate).exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _remove_stale_temp_dirs(self) -> None:
        """Temp dirs exist only while a writer holds the lock, so any we see under it are crash leftovers."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.layout.versions_dir):
                if entry.name.startswith(TMP_PREFIX):
                    shutil.rmtree(entry.path, ignore_errors=True)

    def _write_version_dir(self, version_id: str, files: dict[str, bytes], meta_bytes: bytes) -> None:
        """Fill a temp dir (``meta.json`` last, every file fsynced), then rename it into place."""
        versions_dir = self.layout.versions_dir
        final = versions_dir / version_id
        tmp = versions_dir / f"{TMP_PREFIX}{version_id}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            for name, data in [*files.items(), (META_FILE, meta_bytes)]:
                with open(tmp / name, "xb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            fsync_dir(tmp)
            os.rename(tmp, final)
            fsync_dir(versions_dir)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreWriteError(final, describe_oserror(exc)) from exc
