"""Durable, crash-safe storage for router versions, ``current.json``, reports and seen ids.

Pure synchronous stdlib code; see :mod:`memabrad.store.versions` for the
on-disk layout (docs/contract.md §9).
"""

from memabrad.store.atomic import atomic_write_bytes, atomic_write_json, read_json
from memabrad.store.errors import (
    CorruptFileError,
    CorruptVersionError,
    StoreBusyError,
    StoreError,
    StoreWriteError,
    UnknownReportError,
    UnknownVersionError,
)
from memabrad.store.lock import StoreLock
from memabrad.store.seen import SeenTrajectoryStore
from memabrad.store.versions import RouterVersionStore, VersionMeta, format_rfc3339, model_sha256

__all__ = [
    "CorruptFileError",
    "CorruptVersionError",
    "RouterVersionStore",
    "SeenTrajectoryStore",
    "StoreBusyError",
    "StoreError",
    "StoreLock",
    "StoreWriteError",
    "UnknownReportError",
    "UnknownVersionError",
    "VersionMeta",
    "atomic_write_bytes",
    "atomic_write_json",
    "format_rfc3339",
    "model_sha256",
    "read_json",
]
