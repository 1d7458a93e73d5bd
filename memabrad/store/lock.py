"""Advisory inter-process locks on store directories (``fcntl.flock``).

Two uses: a short write lock around every mutation of a router's store, so two
writers (daemon, CLI, batch cycle) never interleave; and a long-held daemon
lock, so a local ``memabrad rollback`` is refused while a daemon owns the store.
``flock`` locks vanish with the process, so a ``kill -9`` never leaves a stale
lock behind; the holder's pid written into the file is only for messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from memabrad.store.atomic import describe_oserror
from memabrad.store.errors import StoreBusyError, StoreWriteError

__all__ = ["StoreLock"]


class StoreLock:
    """An exclusive ``flock`` on ``path``, re-entrant within one instance.

    Re-entrancy lets a locked store method call another locked method of the
    same store without deadlocking; a thread lock makes one instance safe to
    share between threads. Different instances (or processes) exclude each
    other, because each opens its own file description.
    """

    def __init__(self, path: str | Path, *, purpose: str = "store write") -> None:
        self.path = Path(path)
        self.purpose = purpose
        self._fd: int | None = None
        self._depth = 0
        self._thread_lock = threading.RLock()

    @property
    def held(self) -> bool:
        """True while this instance holds the lock."""
        return self._depth > 0

    def holder(self) -> str | None:
        """Describe who last took the lock, from the file (best effort; None when unknown)."""
        try:
            raw = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not raw:
            return None
        try:
            info = json.loads(raw)
        except json.JSONDecodeError:
            return raw[:200]
        if not isinstance(info, dict):
            return raw[:200]
        return (
            f"pid {info.get('pid', '?')} on {info.get('host', '?')} "
            f"({info.get('purpose', '?')}, since {info.get('acquired_at', '?')})"
        )

    def acquire(self, blocking: bool = True) -> StoreLock:
        """Take the lock; with ``blocking=False`` raise :class:`StoreBusyError` instead of waiting."""
        if not self._thread_lock.acquire(blocking=blocking):
            raise StoreBusyError(self.path, f"another thread of this process (pid {os.getpid()})")
        if self._depth > 0:
            self._depth += 1
            return self
        try:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                raise StoreBusyError(self.path, self.holder()) from None
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
            self._depth = 1
            self._write_holder(fd)
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def release(self) -> None:
        """Undo one :meth:`acquire`; the file lock is dropped when the outermost one is undone."""
        if self._depth == 0:
            raise RuntimeError(f"releasing {self.path}, which this StoreLock does not hold")
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # while still locked, so we never erase a newer holder's pid
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._thread_lock.release()

    def __enter__(self) -> StoreLock:
        return self.acquire(blocking=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"StoreLock({str(self.path)!r}, purpose={self.purpose!r}, held={self.held})"

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise StoreWriteError(self.path, f"cannot open lock file: {describe_oserror(exc)}") from exc

    def _write_holder(self, fd: int) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "acquired_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        data = (json.dumps(info, sort_keys=True) + "\n").encode("utf-8")
        with contextlib.suppress(OSError):  # the pid is informational; never fail the lock over it
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
