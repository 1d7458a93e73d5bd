"""The case index from the app's side: "have we seen this task, and what worked best for it?".

The daemon keeps, per router, the best past trajectory of each distinct task and
persists that index as ``<base_dir>/<router_id>/case-index.json`` whenever the active
version changes. ``CaseLookup`` reads that file and reloads it when it is replaced
(the daemon writes it atomically, so a reload sees the old or the new index, never half).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from memabrad.learning.case_index import Case, CaseIndex, Match, lookup_task
from memabrad.learning.features import TaskView, normalize_text
from memabrad.learning.task_identity import SEP
from memabrad.store.versions import RouterVersionStore

__all__ = ["Case", "CaseLookup", "Match"]

log = logging.getLogger("memabrad.sdk.cases")

_Signature = tuple[int, int, int]


class CaseLookup:
    """Read-only view of one router's persisted case index, reloaded when the file changes.

    ``lookup`` checks the file at most every ``check_interval_s`` seconds (a ``stat``) and
    reloads it in the calling thread when it changed; in an asyncio app with a large index,
    call ``await refresh_async()`` periodically and pass ``check_interval_s=None`` so lookups
    never read the disk. A file that cannot be loaded keeps the previous index
    (``load_failures``, ``last_error``).

    >>> import tempfile
    >>> base = tempfile.mkdtemp()
    >>> idx = CaseIndex()
    >>> idx.add("Latest gold price?", trajectory_id="t1", route="tool.web_search", reward=0.9, error=False,
    ...         latency_ms=800)
    >>> idx.save(Path(base) / "default" / "case-index.json")
    >>> cases = CaseLookup(base, "default")
    >>> cases.best_route("latest gold price?")
    'tool.web_search'
    >>> cases.lookup("something never seen") is None
    True
    >>> task = {"input": "Classify this item", "features": {"x": 3.0}}
    >>> cases.lookup_task(task) is None  # a task with numbers: its text and them
    True
    """

    def __init__(
        self,
        base_dir: str | Path,
        router_id: str = "default",
        *,
        check_interval_s: float | None = 1.0,
        similarity_threshold: float | None = None,
    ) -> None:
        self.path = RouterVersionStore(base_dir, router_id).case_index_path
        self.router_id = router_id
        self.check_interval_s = check_interval_s
        self.similarity_threshold = similarity_threshold
        self.loads = 0
        """How many times an index was (re)loaded from the file."""
        self.load_failures = 0
        self.last_error: str | None = None
        self._index: CaseIndex | None = None
        self._by_text: dict[str, str] = {}  # normalised text -> the key of the latest task with fields and that text
        self._signature: _Signature | None = None
        self._checked_at = -float("inf")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CaseLookup({str(self.path)!r}, cases={len(self)})"

    def __len__(self) -> int:
        index = self._index
        return len(index) if index is not None else 0

    @property
    def index(self) -> CaseIndex | None:
        """The index loaded last (None before the daemon first wrote one); not refreshed by this call."""
        return self._index

    def _stat(self) -> _Signature | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def refresh(self) -> bool:
        """Reload the file if it changed since the last load; True when a new index is now in use."""
        with self._lock:
            self._checked_at = time.monotonic()
            signature = self._stat()
            if signature is None or signature == self._signature:
                return False  # a vanished file keeps the index we have: the daemon never deletes it
            try:
                index = CaseIndex.load(self.path, similarity_threshold=self.similarity_threshold)
            except Exception as err:  # noqa: BLE001 - any unreadable file: keep the old index
                self._signature = signature  # do not retry the same bad file on every lookup
                self.load_failures += 1
                self.last_error = f"{type(err).__name__}: {err}"
                log.error("cannot load case index %s, keeping the previous one: %s", self.path, self.last_error)
                return False
            self._index, self._signature = index, signature
            self._by_text = texts_of(index)
            self.loads += 1
            return True

    async def refresh_async(self) -> bool:
        """``refresh`` in a worker thread, so a large index never stalls the event loop."""
        return await asyncio.to_thread(self.refresh)

    def _maybe_refresh(self) -> None:
        interval = self.check_interval_s
        if interval is not None and time.monotonic() - self._checked_at >= interval:
            self.refresh()

    def lookup(self, text: str) -> Match | None:
        """The best past case for ``text`` (exact, or a near duplicate above the similarity threshold), or None.

        Tasks that carried tags or numbers are cases of their own (``lookup_task``); asked by their text alone,
        the answer is the most recently seen of them with exactly this text."""
        self._maybe_refresh()
        index = self._index
        if index is None:
            return None
        key = normalize_text(text)
        if index.get(text, key) is None and key in self._by_text:
            case = index.get(text, self._by_text[key])
            if case is not None:
                return Match(case, 1.0)
        return index.lookup(text, key=key)

    def lookup_task(self, task: Any) -> Match | None:
        """``lookup`` of a whole task (a dict or model with ``input``, and ``tags`` and ``features`` if any): a
        task that carries numbers or tags is its text and them (``learning/task_identity.py``), as in training."""
        self._maybe_refresh()
        index = self._index
        if index is None:
            return None
        return lookup_task(index, TaskView.of(task))

    def best_route(self, text: str) -> str | None:
        """The route of the best past trajectory for ``text``, or None if the task was not seen."""
        match = self.lookup(text)
        return match.case.route if match is not None else None


def texts_of(index: CaseIndex) -> dict[str, str]:
    """Normalised text -> the key of the most recently seen task with that text and tags or numbers."""
    out: dict[str, str] = {}
    for key in index.task_keys():  # least recently seen first: the latest wins
        text, sep, _ = key.partition(SEP)
        if sep:
            out[text] = key
    return out
