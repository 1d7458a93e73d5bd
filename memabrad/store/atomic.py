"""Crash-safe file writes and strict JSON reads.

A reader (or a process restarted after ``kill -9``) must only ever see the old
content or the new content of a store file, never a torn mix, so every write
goes to a temporary file in the same directory, is fsynced, renamed over the
final name with ``os.replace`` and the directory entry is fsynced too.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any

from memabrad.store.errors import CorruptFileError, StoreWriteError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "dumps_json",
    "fsync_dir",
    "read_json",
    "describe_oserror",
]

# Directories on some file systems cannot be fsynced; that is not a write failure.
_DIR_FSYNC_UNSUPPORTED = {errno.EINVAL, errno.ENOTSUP, errno.EBADF}


def describe_oserror(exc: OSError) -> str:
    """One readable line for an OSError, e.g. ``No space left on device (ENOSPC)``."""
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text} ({name})" if name else text


def fsync_dir(path: str | Path) -> None:
    """Make a rename/create/unlink inside ``path`` durable (POSIX needs the directory fsynced)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def dumps_json(obj: Any) -> bytes:
    """Compact, deterministic UTF-8 JSON (sorted keys, no NaN/Infinity, trailing newline).

    NaN and Infinity are refused (``ValueError``) because they are not JSON and
    would break other readers of the store (dashboards, ``jq``).
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    Creates missing parent directories. On any OSError the temporary file is
    removed, ``path`` keeps its previous content (or stays absent) and
    :class:`StoreWriteError` is raised naming ``path``.
    """
    path = Path(path)
    parent = path.parent
    tmp_name: str | None = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp_name = str(parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        # os.open rather than mkstemp: mode 0o666 minus the umask, like any normal file.
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
        tmp_name = None  # now owned by the final name
        fsync_dir(parent)
    except OSError as exc:
        raise StoreWriteError(path, describe_oserror(exc)) from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Serialise ``obj`` with :func:`dumps_json` and write it with :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, dumps_json(obj))


def read_json(path: str | Path) -> Any:
    """Parse a JSON store file.

    A missing file raises ``FileNotFoundError`` (callers decide whether absence
    is normal); an empty, truncated, non-UTF-8 or otherwise invalid file raises
    :class:`CorruptFileError` naming the file.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.strip():
        raise CorruptFileError(path, "file is empty (truncated write?)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(path, f"not UTF-8: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptFileError(
            path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg} ({len(data)} bytes)"
        ) from exc
