"""Exceptions raised by the storage layer.

Each error carries the path it is about, so the CLI and the daemon can tell an
operator *which* file to look at instead of a bare traceback.
"""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Base class of every storage error, so callers can catch them all at once."""


class CorruptFileError(StoreError):
    """A store file exists but cannot be parsed (truncated, not JSON, wrong shape)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"corrupt store file {self.path}: {reason}")


class CorruptVersionError(CorruptFileError):
    """A router version fails verification: a missing file, a sha256 mismatch, a bad meta.json."""

    def __init__(self, path: str | Path, reason: str, *, version_id: str | None = None) -> None:
        self.version_id = version_id
        super().__init__(path, reason)
        if version_id is not None:
            self.args = (f"router version {version_id} is corrupt: {self.path}: {reason}",)


class UnknownVersionError(StoreError, LookupError):
    """No saved version has this id (or the id is not a well-formed version id)."""

    def __init__(self, version_id: str, router_dir: str | Path | None = None) -> None:
        self.version_id = version_id
        self.router_dir = Path(router_dir) if router_dir is not None else None
        where = f" in {self.router_dir}" if self.router_dir is not None else ""
        super().__init__(f"unknown router version {version_id!r}{where}")

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0])


class UnknownReportError(StoreError, LookupError):
    """No training report has this id."""

    def __init__(self, report_id: str, path: str | Path | None = None) -> None:
        self.report_id = report_id
        self.path = Path(path) if path is not None else None
        where = f" ({self.path} does not exist)" if self.path is not None else ""
        super().__init__(f"unknown training report {report_id!r}{where}")

    def __str__(self) -> str:
        return str(self.args[0])


class StoreWriteError(StoreError):
    """Writing a store file failed (read-only directory, disk full, ...); nothing half-written is left."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot write {self.path}: {reason}")


class StoreBusyError(StoreError):
    """A lock is held by someone else and the caller asked not to wait."""

    def __init__(self, path: str | Path, holder: str | None = None) -> None:
        self.path = Path(path)
        self.holder = holder
        who = holder if holder else "another process (holder unknown)"
        super().__init__(f"lock {self.path} is held by {who}")
