"""The routers this instance serves: their stores, daemon locks, active versions and guards.

Every change of a router's active version — loaded at start or restore, activated by a
promotion, rolled back by the guard or an admin, a baseline (un)pinned — goes through
``RouterRegistry.set_active``, so the metric, the case-index save and the learner's
baseline follow it in one place.

The post-promotion guard (docs/contract.md §3: trigger "guard") is armed here after a promotion
and disarmed on any rollback; its state is kept in the owning partition's state so it is
checkpointed with the learning it watches.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import anyio
import anyio.abc

from memabrad.config import Config
from memabrad.daemon.metrics import DaemonMetrics
from memabrad.daemon.partition import PartitionState
from memabrad.learning.frozen import FrozenScorer
from memabrad.learning.learner import RouterLearner
from memabrad.learning.router import ModelFormatError, Router
from memabrad.learning.snapshot import look_of_report
from memabrad.promotion.events import rollback_event
from memabrad.promotion.guard import GuardTrip, PromotionGuard
from memabrad.promotion.report import TrainingReport
from memabrad.store.atomic import atomic_write_bytes
from memabrad.store.chunked_json import dumps_chunked
from memabrad.store.errors import StoreError, StoreWriteError
from memabrad.store.lock import StoreLock
from memabrad.store.versions import RouterVersionStore
from memabrad.wire.events import RouterEventBase

log = logging.getLogger("memabrad.daemon")



class Owners(Protocol):
    """Which partition state, if any, holds a router on this instance."""

    def owner(self, router_id: str) -> PartitionState | None: ...


class EventSink(Protocol):
    async def publish_event(self, event: RouterEventBase) -> None: ...


class RouterRegistry:
    """One entry per served router: store, daemon lock, active version; arms and disarms guards."""

    def __init__(self, cfg: Config, metrics: DaemonMetrics, events: EventSink, owners: Owners,
                 state_lock: anyio.Lock) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.events = events
        self.owners = owners
        self.state_lock = state_lock
        self._stores: dict[str, RouterVersionStore] = {}
        self._locks: dict[str, StoreLock] = {}
        self._active: dict[str, str | None] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    def attach(self, tg: anyio.abc.TaskGroup | None) -> None:
        """The task group background saves run in; None once shutting down (nothing new is started)."""
        self._tg = tg

    def owner(self, router_id: str) -> PartitionState | None:
        return self.owners.owner(router_id)

    def store(self, router_id: str) -> RouterVersionStore:
        store = self._stores.get(router_id)
        return store if store is not None else RouterVersionStore(self.cfg.store.base_dir, router_id)

    def active(self, router_id: str) -> str | None:
        return self._active.get(router_id)

    def held(self) -> list[str]:
        return list(self._stores)

    # -- holding ----------------------------------------------------------------------

    async def adopt(self, state: PartitionState, router_id: str) -> RouterLearner:
        """A router's first valid record on this partition: create its learner and give it the
        baseline before it learns anything."""
        learner = state.learner(router_id, self.cfg)
        if router_id in self._stores:
            await self.set_active(router_id, self._active.get(router_id), state)
        else:
            await self.hold(router_id, state)
        return learner

    async def hold(self, router_id: str, state: PartitionState) -> None:
        """Hold the router's daemon lock so a local ``memabrad rollback`` is refused meanwhile.
        The lock is a non-blocking ``flock`` taken on the loop (its owner must be this thread); the
        active version is read and verified in a worker thread, off the event loop."""
        if router_id in self._stores:
            return
        store = self._stores[router_id] = RouterVersionStore(self.cfg.store.base_dir, router_id)
        lock = store.daemon_lock()
        try:
            lock.acquire(blocking=False)
            self._locks[router_id] = lock
        except Exception as err:  # noqa: BLE001 - a lock problem must not stop learning
            log.warning("could not take the router's daemon lock", extra={"router_id": router_id,
                                                                           "error": str(err)})
        try:
            version_id = await anyio.to_thread.run_sync(_read_active, store)
        except StoreError as err:
            log.critical("refusing to serve a router with corrupt state", extra={"router_id": router_id,
                                                                                 "error": str(err)})
            raise
        await self.set_active(router_id, version_id, state)

    def release(self, router_id: str) -> None:
        """The router moved to another instance (or we stop): drop its lock, entry and gauges."""
        self._stores.pop(router_id, None)
        lock = self._locks.pop(router_id, None)
        if lock is not None:
            lock.release()
        self._active.pop(router_id, None)
        self.metrics.forget_router(router_id)

    # -- the active version -----------------------------------------------------------

    async def set_active(self, router_id: str, version_id: str | None, state: PartitionState | None = None,
                         from_look: int | None = None) -> None:
        """The one place a router's active version (or pinned baseline) changes on this instance.
        ``state``: the partition state holding the router, when the caller has it (else its owner);
        ``from_look``: the look whose challenger the version is (a promotion; else read from the version's
        report id), so the learner's evidence against it starts right after that look."""
        changed = self._active.get(router_id, version_id) != version_id
        self._active[router_id] = version_id
        self.metrics.set_active(router_id, version_id)
        if changed and self._tg is not None:
            self._tg.start_soon(self._save_case_index, router_id)
        state = state if state is not None else self.owner(router_id)
        learner = state.learners.get(router_id) if state is not None else None
        if learner is not None:
            router, scorer, look = await anyio.to_thread.run_sync(self._load_baseline, router_id, learner)
            if state is not None and state.learners.get(router_id) is learner:  # not replaced meanwhile
                learner.set_baseline(router, scorer, from_look=from_look if from_look is not None else look)

    def _load_baseline(self, router_id: str, learner: RouterLearner
                       ) -> tuple[Router | None, FrozenScorer | None, int | None]:
        """The version challengers are judged against (pinned, else active), sharing the learner's case
        index, with its frozen scorer built here in the worker thread and the look it was promoted from;
        one that cannot be loaded leaves the learner judged against the logging agent (its evaluation is
        skipped anyway, with the reason logged)."""
        store = self.store(router_id)
        try:
            version_id = store.baseline_version_id()
            if version_id is None:
                return None, None, None
            router = Router.load(store.version_dir(version_id), case_index=learner.case_index)
            return router, FrozenScorer(router), look_of_report(router_id, store.get_version(version_id).report_id)
        except (StoreError, ModelFormatError, OSError) as err:
            log.error("cannot load the baseline for live scoring", extra={"router_id": router_id,
                                                                           "error": str(err)})
            return None, None, None

    async def baseline_changed(self, router_id: str) -> None:
        """A baseline was pinned or unpinned: the active version is the same, the learner's baseline not."""
        if router_id in self._active:
            await self.set_active(router_id, self._active[router_id])

    async def promoted(self, report: TrainingReport) -> None:
        """A promotion activated ``report``'s version: watch it, then make it the active one."""
        self._arm_guard(report)
        await self.set_active(report.router_id, report.version_id, from_look=report.evaluation_sequence)

    async def rolled_back(self, router_id: str, version_id: str) -> None:
        """An admin rollback: the guard has nothing left to watch."""
        state = self.owner(router_id)
        if state is not None:
            state.guards.pop(router_id, None)
        await self.set_active(router_id, version_id)

    # -- post-promotion guard ---------------------------------------------------------

    def _arm_guard(self, report: TrainingReport) -> None:
        """Watch the newly promoted version's live trajectories (docs/contract.md §3: trigger "guard")."""
        if not self.cfg.guard.enabled or report.version_id is None:
            return
        rid = report.router_id
        state = self.owner(rid)
        if state is None or rid not in state.learners:
            return
        promised = report.promised
        guard = PromotionGuard()
        guard.arm(report.version_id, report.previous_version_id, reward=promised.reward,
                  error_rate=promised.error_rate, latency_ms=promised.latency_ms)
        if guard.armed:
            state.guards[rid] = guard
        else:  # nothing to roll back to
            state.guards.pop(rid, None)
        log.info("guard armed", extra={"router_id": rid, "version_id": report.version_id,
                                       "rollback_to": report.previous_version_id})

    async def guard_tripped(self, state: PartitionState, router_id: str, trip: GuardTrip) -> None:
        """Roll back to the version active before the promotion (or only log it, in dry-run mode)."""
        state.guards.pop(router_id, None)
        reason = "; ".join(trip.reasons)
        mode = "dry_run" if self.cfg.guard.dry_run else "rollback"
        self.metrics.guard_trips.labels(router_id, mode).inc()
        log.warning("guard tripped", extra={"router_id": router_id, "version_id": trip.version_id,
                                            "rollback_to": trip.rollback_to, "reason": reason, "mode": mode,
                                            "observed": trip.observed})
        if self.cfg.guard.dry_run:
            return
        request_id = f"guard-{trip.version_id}"
        store = self.store(router_id)

        def rollback() -> dict[str, Any] | None:
            current = store.get_current()
            if not current or current.get("version_id") != trip.version_id:
                return None  # someone already moved on from that version
            return store.rollback(trip.rollback_to, trigger="guard", requested_by="memabrad-guard", reason=reason,
                                  request_id=request_id)

        current = await anyio.to_thread.run_sync(rollback)
        if current is None:
            return
        self.metrics.rollbacks.labels(router_id, "guard").inc()
        await self.set_active(router_id, current["version_id"], state)
        await self.events.publish_event(rollback_event(
            router_id, current, trigger="guard", request_id=request_id, requested_by="memabrad-guard",
            reason=reason))

    # -- case index -------------------------------------------------------------------

    async def _save_case_index(self, router_id: str) -> None:
        """Publish the router's case index beside its versions, so serving sees the hints training saw.
        The snapshot is taken in a worker thread while record processing waits on the state lock."""
        async with self.state_lock:
            state = self.owner(router_id)
            learner = state.learners.get(router_id) if state is not None else None
            if learner is None:
                return
            doc = await anyio.to_thread.run_sync(learner.case_index.to_state)
        path = self.store(router_id).case_index_path
        try:  # encoded a slice at a time: one encoder call over 20,000 cases would hold the GIL for long
            await anyio.to_thread.run_sync(lambda: atomic_write_bytes(path, dumps_chunked(doc)))
        except StoreWriteError as err:
            log.error("cannot write the case index", extra={"router_id": router_id, "error": str(err)})


def _read_active(store: RouterVersionStore) -> str | None:
    """Read and verify the router's active version; a corrupt ``current.json`` or version is fatal
    (the message names the file): the daemon never serves or evaluates on garbage."""
    current = store.get_current()
    if current is not None:
        store.verify_version(current["version_id"])
    return current["version_id"] if current else None
