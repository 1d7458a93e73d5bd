"""Partition checkpoints, and the one object that owns the commit order.

A checkpoint generation is one ``.npz`` file (a zip with CRCs, loaded with
``allow_pickle=False``): the partition's JSON document plus its duplicate-memory arrays.
It is written to a temp file, fsynced and renamed, so a reader sees a whole generation
or none; the last ``generations`` files are kept, and a corrupt newest one falls back to
the one before with a log line naming it.

Commit order (``Checkpointer.checkpoint``), the heart of the no-loss/no-double guarantee:

1. flush the producer (dead letters and router events of the processed records are acknowledged);
2. wait for the partition's evaluations in flight (their versions, reports and events are durable);
3. write the checkpoint generation (state + ``next_offset``) durably;
4. only then commit ``next_offset`` to Kafka.

A crash before 3 replays from the previous checkpoint: learning is deterministic, so the
replay rebuilds the same state, re-triggers the same evaluations (same report ids; the
store makes them idempotent) and re-publishes the same events (same event ids). A crash
between 3 and 4 is harmless: on restart the daemon seeks to the checkpoint's offset,
not to the (older) committed one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import zipfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from memabrad.config import Config
from memabrad.daemon.partition import PartitionState
from memabrad.store.atomic import atomic_write_bytes
from memabrad.store.chunked_json import dumps_chunked, gc_paused, loads

log = logging.getLogger("memabrad.checkpoint")
_GEN = re.compile(r"^gen-(\d{12})\.npz$")


class CheckpointCorrupt(ValueError):
    """A checkpoint file that cannot be read; the message names it."""


@dataclass(frozen=True)
class Restored:
    state: PartitionState
    path: Path | None
    skipped: list[str]  # corrupt generations passed over, with reasons


class CheckpointStore:
    """Generation files of each partition under ``<base_dir>/_checkpoints/<group>/<topic>-<p>/``."""

    def __init__(self, base_dir: str | Path, group_id: str, keep: int = 3) -> None:
        self.root = Path(base_dir) / "_checkpoints" / group_id
        self.keep = keep

    def directory(self, topic: str, partition: int) -> Path:
        return self.root / f"{topic}-{partition}"

    def generations(self, topic: str, partition: int) -> list[tuple[int, Path]]:
        d = self.directory(topic, partition)
        if not d.is_dir():
            return []
        found = [(int(m.group(1)), d / name) for name in os.listdir(d) if (m := _GEN.match(name))]
        return sorted(found)

    def write(self, state: PartitionState) -> Path:
        """Snapshot, encode and durably write one generation of ``state``.

        Runs in a worker thread while the caller holds the lock that guards the state, so the
        event loop keeps serving: the snapshot is plain Python (the interpreter switches threads
        every few milliseconds), the collector is paused while it is built, and the document is
        encoded a slice at a time (``store.chunked_json``)."""
        with gc_paused():
            doc, arrays = state.to_payload()
            blob = dumps_chunked(doc)
        return self.write_payload(state.topic, state.partition, blob, arrays)

    def write_payload(self, topic: str, partition: int, blob: bytes, arrays: dict[str, Any]) -> Path:
        """Durably write one generation: the encoded JSON document and the numpy arrays."""
        buf = io.BytesIO()
        np.savez(buf, doc=np.frombuffer(blob, dtype=np.uint8), **arrays)
        gens = self.generations(topic, partition)
        number = gens[-1][0] + 1 if gens else 1
        path = self.directory(topic, partition) / f"gen-{number:012d}.npz"
        atomic_write_bytes(path, buf.getvalue())
        for _, old in gens[: max(0, len(gens) + 1 - self.keep)]:
            with contextlib.suppress(OSError):
                old.unlink()
        return path

    @staticmethod
    def read(path: Path, cfg: Config) -> PartitionState:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            doc = loads(arrays.pop("doc").tobytes())
            with gc_paused():
                return PartitionState.from_payload(doc, arrays, cfg)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as err:
            raise CheckpointCorrupt(f"checkpoint {path} is unreadable: {err}") from err

    def restore(self, topic: str, partition: int, cfg: Config) -> Restored:
        """Newest readable generation; an empty state when there is none."""
        skipped: list[str] = []
        for _, path in reversed(self.generations(topic, partition)):
            try:
                return Restored(self.read(path, cfg), path, skipped)
            except CheckpointCorrupt as err:
                log.error("skipping corrupt checkpoint generation", extra={"file": str(path), "error": str(err)})
                skipped.append(str(err))
        return Restored(PartitionState.empty(topic, partition, cfg), None, skipped)


def read_checkpoint_doc(path: Path) -> dict[str, Any] | None:
    """Only the JSON document of a generation (for ``memabrad status``); None if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return loads(z["doc"].tobytes())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


class Checkpointer:
    """Owns the order flush -> evaluations -> durable checkpoint -> offset commit.

    The caller holds the lock that guards the states for the whole call (the states are
    snapshotted in a worker thread, so nothing may change them meanwhile)."""

    def __init__(
        self,
        store: CheckpointStore,
        flush: Callable[[], Awaitable[None]],
        wait_evaluations: Callable[[Iterable[tuple[str, int]]], Awaitable[None]],
        commit: Callable[[dict[tuple[str, int], int]], Awaitable[None]],
        on_written: Callable[[PartitionState, Path], None] | None = None,
    ) -> None:
        self.store = store
        self._flush = flush
        self._wait_evaluations = wait_evaluations
        self._commit = commit
        self._on_written = on_written
        self._lock = anyio.Lock()

    async def checkpoint(self, states: list[PartitionState], reason: str) -> dict[tuple[str, int], int]:
        """Make the states durable, then commit their offsets. Returns what was committed."""
        async with self._lock:
            await self._flush()
            await self._wait_evaluations([(s.topic, s.partition) for s in states])
            offsets: dict[tuple[str, int], int] = {}
            for state in states:
                if state.records_since_checkpoint == 0 and reason == "periodic":
                    continue
                path = await anyio.to_thread.run_sync(self.store.write, state)
                state.records_since_checkpoint = 0
                if state.next_offset is not None:
                    offsets[(state.topic, state.partition)] = state.next_offset
                if self._on_written:
                    self._on_written(state, path)
            if offsets:
                await self._commit(offsets)
            log.debug("checkpoint written", extra={"reason": reason, "offsets": {f"{t}:{p}": o for (t, p), o in
                                                                                     offsets.items()}})
            return offsets


def describe(offsets: dict[tuple[str, int], int]) -> dict[str, Any]:
    return {f"{t}:{p}": o for (t, p), o in offsets.items()}
