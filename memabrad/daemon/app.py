"""``memabrad run``: the daemon's task group and its I/O loops.

One anyio task group on asyncio holds the trajectory consumer, the evaluator, the
admin consumer, the HTTP server and the signal watcher. Any task failing cancels the
group and the process exits non-zero with the cause logged — never half alive.

Per-record work is pure and synchronous (parse, dedupe, learn); the loops only move
bytes and call the ``Checkpointer``, which owns the commit order. See
``docs/reliability.md`` for every failure point and what a restart does.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, NoOffsetForPartitionError, OffsetOutOfRangeError

from memabrad.config import Config
from memabrad.daemon.admin import AdminHandler, AdminMessage, router_of_key
from memabrad.daemon.checkpoint import Checkpointer, CheckpointStore, describe
from memabrad.daemon.evaluator import EvaluationRunner
from memabrad.daemon.http import Heartbeat, HttpApp, HttpServer, heartbeat_loop
from memabrad.daemon.metrics import DaemonMetrics
from memabrad.daemon.partition import UNKNOWN_ROUTER, PartitionState
from memabrad.daemon.publisher import Publisher, PublishError
from memabrad.evaluation.benchmark import load_suite
from memabrad.kafka.client import client_kwargs, partition_for_key
from memabrad.kafka.topics import ensure_topics
from memabrad.promotion.events import rollback_event
from memabrad.promotion.guard import GuardSettings, GuardTrip
from memabrad.store.atomic import atomic_write_bytes
from memabrad.store.chunked_json import dumps_chunked
from memabrad.store.errors import StoreError, StoreWriteError
from memabrad.store.lock import StoreLock
from memabrad.store.versions import RouterVersionStore
from memabrad.wire.ids import dedupe_key, trajectory_digest
from memabrad.wire.parse import InvalidTrajectory, parse_trajectory

log = logging.getLogger("memabrad.daemon")
REBALANCE_BUDGET_S = 8.0
SHUTDOWN_EVAL_BUDGET_S = 3.0  # waiting for evaluations in flight, then
SHUTDOWN_CHECKPOINT_BUDGET_S = 6.0  # the final checkpoint: SIGTERM exits within 10 s
COMMIT_TIMEOUT_S = 5.0
SLICE_S = 0.005  # the longest stretch of record processing between two yields to the event loop


class FatalError(RuntimeError):
    """Raised into the main loop when a background callback failed."""


def _router_of_key(key: bytes | None) -> str:
    return router_of_key(key) if key else UNKNOWN_ROUTER


@dataclass
class Daemon:
    cfg: Config
    metrics: DaemonMetrics = field(default_factory=DaemonMetrics)
    states: dict[tuple[str, int], PartitionState] = field(default_factory=dict)
    assigned: bool = False
    stopping: bool = False
    degraded: str | None = None  # why checkpoints currently fail (disk, broker); None when healthy
    broker_ok: bool = True
    http_port: int | None = None

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.topic = cfg.kafka.topics.trajectories
        self.publisher = Publisher(cfg)
        suite = load_suite(cfg.evaluation.suite_path) if cfg.evaluation.suite_path else []
        self.evaluator = EvaluationRunner(cfg, self.metrics, self.publisher.publish_event, self._set_active, suite,
                                          self._arm_guard)
        self.guard_settings = GuardSettings.from_config(cfg.guard, cfg.promotion)
        self.ckpt_store = CheckpointStore(cfg.store.base_dir, cfg.kafka.group_id, cfg.checkpoint.generations)
        self.checkpointer = Checkpointer(self.ckpt_store, self.publisher.flush, self._wait_evaluations,
                                         self._commit, self._on_checkpoint_written)
        self.admin = AdminHandler(cfg, self.metrics, self.publisher.publish_event, self._owner, self._evaluate_now,
                                  self._set_active)
        self.state_lock = anyio.Lock()
        self._fatal: BaseException | None = None
        self._locks: dict[str, StoreLock] = {}
        self._active: dict[str, str | None] = {}
        self._counter_cache: dict[tuple[str, str], Any] = {}
        self._gauge_cache: dict[str, Any] = {}
        self._lag_cache: dict[TopicPartition, Any] = {}
        self._last_checkpoint = time.monotonic()
        self._checkpoint_failures = 0
        self._retry_at = 0.0
        self._partitions_count: int | None = None
        self._admin_reseek = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.admin_consumer: AIOKafkaConsumer | None = None

    @property
    def ready(self) -> bool:
        """State loaded, partitions assigned, checkpoints and broker healthy, not shutting down."""
        return self.assigned and not self.stopping and self.degraded is None and self.broker_ok

    # -- ownership ----------------------------------------------------------------------

    def _owner(self, router_id: str) -> PartitionState | None:
        if not self._partitions_count:
            return None
        return self.states.get((self.topic, partition_for_key(router_id, self._partitions_count)))

    async def _hold_router(self, router_id: str) -> None:
        """Hold the router's daemon lock so a local ``memabrad rollback`` is refused meanwhile.
        The lock is a non-blocking ``flock`` taken on the loop (its owner must be this thread); the
        active version is read and verified in a worker thread, off the event loop."""
        if router_id in self._locks:
            return
        lock = RouterVersionStore(self.cfg.store.base_dir, router_id).daemon_lock()
        try:
            lock.acquire(blocking=False)
            self._locks[router_id] = lock
        except Exception as err:  # noqa: BLE001 - a lock problem must not stop learning
            log.warning("could not take the router's daemon lock", extra={"router_id": router_id,
                                                                           "error": str(err)})
        try:
            version_id = await anyio.to_thread.run_sync(self._read_active, router_id)
        except StoreError as err:
            log.critical("refusing to serve a router with corrupt state", extra={"router_id": router_id,
                                                                                 "error": str(err)})
            raise
        self._set_active(router_id, version_id)

    def _release_router(self, router_id: str) -> None:
        lock = self._locks.pop(router_id, None)
        if lock is not None:
            lock.release()
        self._active.pop(router_id, None)
        self._gauge_cache.pop(router_id, None)
        self.metrics.forget_router(router_id)

    def _read_active(self, router_id: str) -> str | None:
        """Read and verify the router's active version; a corrupt ``current.json`` or version is fatal
        (the message names the file): the daemon never serves or evaluates on garbage."""
        store = RouterVersionStore(self.cfg.store.base_dir, router_id)
        current = store.get_current()
        if current is not None:
            store.verify_version(current["version_id"])
        return current["version_id"] if current else None

    def _set_active(self, router_id: str, version_id: str | None) -> None:
        changed = self._active.get(router_id, version_id) != version_id
        self._active[router_id] = version_id
        self.metrics.set_active(router_id, version_id)
        if changed and self._tg is not None:
            self._tg.start_soon(self._save_case_index, router_id)

    # -- post-promotion guard ----------------------------------------------------------

    def _arm_guard(self, report: dict[str, Any]) -> None:
        """Watch the newly promoted version's live trajectories (CONTRACT: trigger "guard")."""
        if not self.cfg.guard.enabled:
            return
        owner = self._owner(report["router_id"])
        learner = owner.learners.get(report["router_id"]) if owner else None
        if learner is None:
            return
        ch = report["benchmark"]["challenger"]
        learner.guard.arm(report["version_id"], report.get("previous_version_id"), reward=ch["reward"] or 0.0,
                          error_rate=ch["error_rate"] or 0.0, latency_ms=ch["latency_ms"] or 0.0)
        log.info("guard armed", extra={"router_id": report["router_id"], "version_id": report["version_id"],
                                       "rollback_to": report.get("previous_version_id")})

    async def _guard_tripped(self, router_id: str, learner: Any, trip: GuardTrip) -> None:
        learner.guard.disarm()
        reason = "; ".join(trip.reasons)
        mode = "dry_run" if self.cfg.guard.dry_run else "rollback"
        self.metrics.guard_trips.labels(router_id, mode).inc()
        log.warning("guard tripped", extra={"router_id": router_id, "version_id": trip.version_id,
                                            "rollback_to": trip.rollback_to, "reason": reason, "mode": mode,
                                            "observed": trip.observed})
        if self.cfg.guard.dry_run:
            return

        def rollback() -> dict[str, Any] | None:
            store = RouterVersionStore(self.cfg.store.base_dir, router_id)
            current = store.get_current()
            if not current or current.get("version_id") != trip.version_id:
                return None  # someone already moved on from that version
            return store.rollback(trip.rollback_to, trigger="guard", requested_by="memabrad-guard", reason=reason,
                                  request_id=f"guard-{trip.version_id}")

        current = await anyio.to_thread.run_sync(rollback)
        if current is None:
            return
        self.metrics.rollbacks.labels(router_id, "guard").inc()
        self._set_active(router_id, current["version_id"])
        await self.publisher.publish_event(rollback_event(
            router_id, current, trigger="guard", request_id=f"guard-{trip.version_id}",
            requested_by="memabrad-guard", reason=reason))

    async def _save_case_index(self, router_id: str) -> None:
        """Publish the router's case index beside its versions, so serving sees the hints training saw.
        The snapshot is taken in a worker thread while record processing waits on the state lock."""
        async with self.state_lock:
            owner = self._owner(router_id)
            learner = owner.learners.get(router_id) if owner else None
            if learner is None:
                return
            doc = await anyio.to_thread.run_sync(learner.case_index.to_state)
        path = RouterVersionStore(self.cfg.store.base_dir, router_id).case_index_path
        try:  # encoded a slice at a time: one encoder call over 20,000 cases would hold the GIL for long
            await anyio.to_thread.run_sync(lambda: atomic_write_bytes(path, dumps_chunked(doc)))
        except StoreWriteError as err:
            log.error("cannot write the case index", extra={"router_id": router_id, "error": str(err)})

    # -- evaluation hooks ---------------------------------------------------------------

    def _evaluate_now(self, state: PartitionState, router_id: str) -> bool:
        learner = state.learners.get(router_id)
        if learner is None or not len(learner.window):
            return False
        self.evaluator.submit((state.topic, state.partition), learner.snapshot())
        self.metrics.since_evaluation.labels(router_id).set(0)
        return True

    async def _wait_evaluations(self, states: Any) -> None:
        await self.evaluator.wait_partitions((s.topic, s.partition) for s in states)

    async def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        assert self.consumer is not None
        owned = self.consumer.assignment()
        tps = {TopicPartition(t, p): o for (t, p), o in offsets.items() if TopicPartition(t, p) in owned}
        if not tps:
            return
        with anyio.move_on_after(COMMIT_TIMEOUT_S) as scope:
            try:
                await self.consumer.commit(tps)
            except KafkaError as err:
                log.warning("offset commit failed; the checkpoint stays authoritative",
                            extra={"error": repr(err), "offsets": describe(offsets)})
        if scope.cancelled_caught:
            log.warning("offset commit timed out; the checkpoint stays authoritative")

    def _on_checkpoint_written(self, state: PartitionState, path: Any) -> None:
        self.metrics.checkpoints.labels("written").inc()
        log.debug("checkpoint", extra={"partition": state.partition, "offset": state.next_offset, "file": str(path)})

    # -- per record ---------------------------------------------------------------------

    def _count(self, router_id: str, result: str) -> None:
        child = self._counter_cache.get((router_id, result))
        if child is None:
            child = self._counter_cache[(router_id, result)] = self.metrics.trajectories.labels(router_id, result)
        child.inc()

    async def _process(self, state: PartitionState, msg: Any) -> None:
        """One record: dead-letter it, count it as a duplicate, or learn it."""
        cfg = self.cfg
        try:
            t = parse_trajectory(msg.value if msg.value is not None else b"", max_bytes=cfg.kafka.max_message_bytes)
        except InvalidTrajectory as err:
            rid = state.count_invalid(_router_of_key(msg.key))
            self._count(rid, "invalid")
            self.metrics.invalid.labels(err.code).inc()
            await self.publisher.send_dead_letter(key=msg.key, value=msg.value, reason=err.reason, field=err.field,
                                                  source=f"{msg.topic}:{msg.partition}:{msg.offset}")
            return
        rid = t.router_id
        learner = state.learners.get(rid)
        if learner is None:
            learner = state.learner(rid, cfg)
            await self._hold_router(rid)
        digest = trajectory_digest(t.trajectory_id)
        h = dedupe_key(digest)
        if state.dedupe.contains_hash(h):
            learner.counters.duplicates += 1
            self._count(rid, "duplicate")
            return
        learner.observe(t, digest)
        state.dedupe.add_hash(h)
        self._count(rid, "accepted")
        if learner.guard.armed:
            o = t.outcome
            trip = learner.guard.observe(t.decision.router_version, o.reward, o.error, o.latency_ms,
                                         self.guard_settings, propensity=t.decision.propensity,
                                         n_candidates=len(t.candidates))
            if trip is not None:
                await self._guard_tripped(rid, learner, trip)
        if learner.counters.since_evaluation >= cfg.evaluation.min_new_trajectories:
            self.evaluator.submit((state.topic, state.partition), learner.snapshot())
        gauge = self._gauge_cache.get(rid)
        if gauge is None:
            gauge = self._gauge_cache[rid] = self.metrics.since_evaluation.labels(rid)
        gauge.set(learner.counters.since_evaluation)

    async def _process_batch(self, batch: dict[TopicPartition, list[Any]]) -> int:
        """Learn a fetched batch in time slices of ``SLICE_S``, yielding to the event loop (HTTP, admin,
        heartbeats, the evaluator) and releasing the state lock between slices."""
        n = 0
        observe = self.metrics.event_processing.observe
        age = self.metrics.record_age.observe
        clock = time.perf_counter
        for tp, msgs in batch.items():
            key = (tp.topic, tp.partition)
            i, total = 0, len(msgs)
            while i < total and not self.stopping:  # on SIGTERM the rest is replayed from the checkpoint
                async with self.state_lock:
                    state = self.states.get(key)
                    if state is None:
                        break  # revoked while the batch was in flight: the new owner replays it
                    wall0, t0 = time.time(), clock()  # record age = wall clock now - produce time
                    slice_end = t0 + SLICE_S
                    while i < total:
                        msg = msgs[i]
                        i += 1
                        if state.next_offset is not None and msg.offset < state.next_offset:
                            continue
                        start = clock()
                        await self._process(state, msg)
                        state.next_offset = msg.offset + 1
                        state.records_since_checkpoint += 1
                        done = clock()
                        observe(done - start)
                        if msg.timestamp and msg.timestamp > 0:
                            age(max(0.0, wall0 + (done - t0) - msg.timestamp / 1000.0))
                        n += 1
                        if done >= slice_end:
                            break
                    assert self.consumer is not None
                    hw = self.consumer.highwater(tp)
                    if hw is not None and state.next_offset is not None:
                        self._lag_gauge(tp).set(max(0, hw - state.next_offset))
                await anyio.sleep(0)
        return n

    def _lag_gauge(self, tp: TopicPartition) -> Any:
        gauge = self._lag_cache.get(tp)
        if gauge is None:
            gauge = self._lag_cache[tp] = self.metrics.consumer_lag.labels(tp.topic, str(tp.partition))
        return gauge

    # -- checkpoints --------------------------------------------------------------------

    async def checkpoint(self, states: list[PartitionState] | None = None, reason: str = "periodic") -> bool:
        """Checkpoint and commit; on failure stay up, not ready, and retry with backoff."""
        if reason == "periodic" and time.monotonic() < self._retry_at:
            return False
        started = time.perf_counter()
        try:
            async with self.state_lock:
                chosen = list(self.states.values()) if states is None else states
                await self.checkpointer.checkpoint(chosen, reason)
        except (OSError, StoreError, PublishError, KafkaError) as err:
            self._checkpoint_failures += 1
            backoff = min(30.0, 0.5 * 2 ** min(self._checkpoint_failures, 6))
            self._retry_at = time.monotonic() + backoff
            self.degraded = f"checkpoint failed: {err}"
            self.metrics.checkpoints.labels("failed").inc()
            self.metrics.ready.set(0)
            log.error("checkpoint failed; offsets not committed, retrying", extra={
                "reason": reason, "error": str(err), "retry_in_s": backoff, "failures": self._checkpoint_failures})
            return False
        if self.degraded is not None:
            log.info("checkpoint recovered", extra={"after_failures": self._checkpoint_failures})
        self.degraded = None
        self._checkpoint_failures = 0
        self._last_checkpoint = time.monotonic()
        self.metrics.ready.set(1 if self.ready else 0)
        self.metrics.checkpoint_duration.observe(time.perf_counter() - started)
        return True

    def _checkpoint_due(self) -> bool:
        c = self.cfg.checkpoint
        pending = sum(s.records_since_checkpoint for s in self.states.values())
        if pending == 0 or time.monotonic() < self._retry_at:
            return False
        elapsed = time.monotonic() - self._last_checkpoint
        return self.degraded is not None or pending >= c.every_n or elapsed >= c.interval_s

    # -- rebalance ----------------------------------------------------------------------

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.assigned = False
        self.metrics.ready.set(0)
        keys = [(tp.topic, tp.partition) for tp in revoked if (tp.topic, tp.partition) in self.states]
        if not keys:
            return
        with anyio.move_on_after(REBALANCE_BUDGET_S) as scope:
            await self.checkpoint([self.states[k] for k in keys], reason="revoke")
        if scope.cancelled_caught:
            log.error("revoke checkpoint exceeded its budget; the new owner replays from the previous checkpoint",
                      extra={"partitions": [p for _, p in keys]})
        async with self.state_lock:
            for k in keys:
                state = self.states.pop(k, None)
                if state is None:
                    continue
                for rid in state.routers():
                    self._release_router(rid)
                self._lag_cache.pop(TopicPartition(*k), None)
                with contextlib.suppress(KeyError):
                    self.metrics.consumer_lag.remove(k[0], str(k[1]))
        log.info("partitions revoked", extra={"partitions": [p for _, p in keys]})

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        assert self.consumer is not None
        async with self.state_lock:
            new = [tp for tp in sorted(assigned) if (tp.topic, tp.partition) not in self.states]
            restored = {tp: await anyio.to_thread.run_sync(self.ckpt_store.restore, tp.topic, tp.partition, self.cfg)
                        for tp in new}
            # Seek every partition with no await in between, so the fetcher never looks for a
            # committed offset of its own (the checkpoint, not the group, is the source of truth).
            fresh = []
            for tp, r in restored.items():
                self.states[(tp.topic, tp.partition)] = r.state
                if r.state.next_offset is None:
                    fresh.append(tp)
                else:
                    self.consumer.seek(tp, r.state.next_offset)
                    log.info("restored partition from checkpoint", extra={
                        "partition": tp.partition, "offset": r.state.next_offset, "file": str(r.path),
                        "routers": sorted(r.state.learners)})
            if fresh:
                await self.consumer.seek_to_beginning(*fresh)
                log.info("no checkpoint: consuming from the beginning",
                         extra={"partitions": [t.partition for t in fresh]})
            for r in restored.values():
                for rid in r.state.routers():
                    if rid != UNKNOWN_ROUTER:
                        await self._hold_router(rid)
                        learner = r.state.learners.get(rid)
                        if learner is not None:
                            self.metrics.since_evaluation.labels(rid).set(learner.counters.since_evaluation)
            self._partitions_count = len(self.consumer.partitions_for_topic(self.topic) or []) or None
        await self._prepare_admin_positions()
        # The restored state (cases, benchmark window, models) lives as long as the assignment: keep
        # it out of the collector's full passes, which would otherwise walk it every few seconds and
        # hold the GIL (and the event loop) while they do. Refcounting still frees it when dropped.
        gc.freeze()
        self.assigned = True
        self.metrics.ready.set(1 if self.ready else 0)
        log.info("partitions assigned", extra={"partitions": sorted(tp.partition for tp in assigned)})

    async def _no_offset(self, err: NoOffsetForPartitionError) -> None:
        """The fetcher wanted a position before the assignment callback set it: set it from our state."""
        assert self.consumer is not None
        async with self.state_lock:
            for tp in sorted(self.consumer.assignment()):
                state = self.states.get((tp.topic, tp.partition))
                if state is not None and state.next_offset is not None:
                    self.consumer.seek(tp, state.next_offset)
                elif state is not None:
                    await self.consumer.seek_to_beginning(tp)
        log.info("positions set from checkpoints after the fetcher asked for them", extra={"error": str(err)})

    # -- admin topic --------------------------------------------------------------------

    async def _prepare_admin_positions(self) -> None:
        """Give fresh partitions an admin start position (the current end) and re-seek the admin reader."""
        ac = self.admin_consumer
        if ac is None:
            return
        tps = sorted(ac.assignment())
        for tp in tps:
            fresh = [s for s in self.states.values() if tp.partition not in s.admin_offsets]
            if fresh:
                await ac.seek_to_end(tp)
                end = await ac.position(tp)
                for s in fresh:
                    s.admin_offsets[tp.partition] = end
        for tp in tps:
            positions = [s.admin_offsets[tp.partition] for s in self.states.values()
                         if tp.partition in s.admin_offsets]
            if positions:
                ac.seek(tp, min(positions))
            else:  # no router of ours: nothing to act on, just follow the end
                await ac.seek_to_end(tp)
        self._admin_reseek.set()

    async def _admin_out_of_range(self, err: OffsetOutOfRangeError) -> None:
        """The admin log is behind our saved positions (broker lost its data): start over from its beginning."""
        ac = self.admin_consumer
        assert ac is not None
        positions = err.args[0] if err.args and isinstance(err.args[0], dict) else {}
        tps = list(positions) or sorted(ac.assignment())
        starts = await ac.beginning_offsets(tps)
        ends = await ac.end_offsets(tps)
        async with self.state_lock:
            for tp in tps:
                for state in self.states.values():
                    if state.admin_offsets.get(tp.partition, 0) > ends[tp] or \
                            state.admin_offsets.get(tp.partition, 0) < starts[tp]:
                        state.admin_offsets[tp.partition] = starts[tp]
                        state.records_since_checkpoint += 1
                self.metrics.offset_resets.labels(f"admin-{tp.partition}", "admin_log_reset").inc()
                log.error("admin topic offset out of range; reading it from its beginning",
                          extra={"partition": tp.partition, "log_start": starts[tp], "log_end": ends[tp]})
                ac.seek(tp, starts[tp])

    async def admin_loop(self) -> None:
        ac = self.admin_consumer
        assert ac is not None
        await self._admin_reseek.wait()  # positions come from the partitions' checkpoints
        while not self.stopping:
            try:
                batch = await ac.getmany(timeout_ms=300, max_records=100)
            except OffsetOutOfRangeError as err:
                await self._admin_out_of_range(err)
                continue
            for tp, msgs in batch.items():
                for msg in msgs:
                    async with self.state_lock:
                        await self.admin.handle(AdminMessage(tp.partition, msg.offset, msg.key, msg.value))

    # -- status -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        routers: dict[str, Any] = {}
        for state in list(self.states.values()):
            for rid in sorted(state.routers()):
                learner = state.learners.get(rid)
                c = learner.counters if learner else None
                routers[rid] = {
                    "active_version": self._active.get(rid),
                    "trajectories_learned": c.learned if c else 0,
                    "duplicates": c.duplicates if c else 0,
                    "invalid": state.invalid_by_router.get(rid, 0),
                    "since_evaluation": c.since_evaluation if c else 0,
                    "evaluations": c.evaluations if c else 0,
                    "last_evaluation": self.evaluator.last_evaluation.get(rid) or self._last_report(rid),
                    "partition": state.partition,
                }
        return {
            "ready": self.ready,
            "routers": routers,
            "partitions": {str(p): {"next_offset": s.next_offset} for (_, p), s in sorted(self.states.items())},
            "evaluations_pending": self.evaluator.pending_count(),
        }

    def _last_report(self, router_id: str) -> dict[str, Any] | None:
        try:
            report = RouterVersionStore(self.cfg.store.base_dir, router_id).last_report()
        except Exception:  # noqa: BLE001
            return None
        if report is None:
            return None
        last = {k: report.get(k) for k in ("report_id", "verdict", "outcome", "created_at", "version_id")}
        self.evaluator.last_evaluation[router_id] = last
        return last

    # -- main ---------------------------------------------------------------------------

    async def consume_loop(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        while not self.stopping:
            if self._fatal is not None:
                raise FatalError(f"a rebalance callback failed: {self._fatal}") from self._fatal
            try:
                batch = await consumer.getmany(timeout_ms=300, max_records=self.cfg.kafka.fetch_max_records)
            except OffsetOutOfRangeError as err:
                await self._out_of_range(err)
                continue
            except NoOffsetForPartitionError as err:
                await self._no_offset(err)
                continue
            if batch:
                await self._process_batch(batch)
            else:
                await self._check_log_behind()
            if self._checkpoint_due():
                await self.checkpoint()

    async def _out_of_range(self, err: OffsetOutOfRangeError) -> None:
        """The broker refused our position: apply the documented rule to those partitions."""
        assert self.consumer is not None
        positions = err.args[0] if err.args and isinstance(err.args[0], dict) else {}
        await self._reposition(list(positions) or sorted(self.consumer.assignment()))

    async def _check_log_behind(self) -> None:
        """Some brokers answer a position past the log's end with an empty fetch instead of an error;
        the fetch highwater then sits below our position, which never happens otherwise."""
        assert self.consumer is not None
        behind = []
        for tp in self.consumer.assignment():
            state = self.states.get((tp.topic, tp.partition))
            hw = self.consumer.highwater(tp)
            if state is not None and state.next_offset is not None and hw is not None and hw < state.next_offset:
                behind.append(tp)
        if behind:
            await self._reposition(behind, known_behind=True)

    async def _reposition(self, tps: list[TopicPartition], known_behind: bool = False) -> None:
        """The log no longer holds the checkpoint's position; never a silent reset.

        Log behind the checkpoint (the broker lost its data, the topic was recreated): consume
        from the log's beginning; the duplicate memory keeps already-learned ids from being
        learned again, and nothing new is skipped. Checkpoint behind the log's start (retention
        deleted records never consumed): consume from the log's start and count the gap.
        """
        assert self.consumer is not None
        starts = await self.consumer.beginning_offsets(tps)
        async with self.state_lock:
            for tp in tps:
                state = self.states.get((tp.topic, tp.partition))
                if state is None:
                    continue
                start, at = starts[tp], state.next_offset or 0
                if not known_behind and at < start:
                    rule, gap = "records_expired", start - at
                    self.metrics.offset_gap_records.labels(str(tp.partition)).inc(gap)
                elif known_behind or at > start:
                    rule, gap = "log_behind_checkpoint", 0
                else:
                    continue
                self.metrics.offset_resets.labels(str(tp.partition), rule).inc()
                log.error("partition log does not hold the checkpoint's position; applying the documented rule",
                          extra={"partition": tp.partition, "checkpoint_offset": at, "log_start": start,
                                 "highwater": self.consumer.highwater(tp), "rule": rule, "records_lost": gap})
                state.next_offset = start
                state.records_since_checkpoint += 1
                self.consumer.seek(tp, start)

    async def broker_probe(self) -> None:
        """Readiness follows the broker: a metadata round trip every few seconds."""
        assert self.consumer is not None
        while not self.stopping:
            ok = False
            with anyio.move_on_after(5.0):
                try:
                    await self.consumer.topics()
                    ok = True
                except KafkaError:
                    ok = False
            if ok != self.broker_ok:
                log.warning("broker reachable" if ok else "broker unreachable")
            self.broker_ok = ok
            self.metrics.ready.set(1 if self.ready else 0)
            await anyio.sleep(2.0)

    async def shutdown_checkpoint(self) -> None:
        """Final checkpoint on SIGTERM: skip partitions whose evaluation cannot finish in the budget."""
        with anyio.move_on_after(SHUTDOWN_EVAL_BUDGET_S):
            await self.evaluator.wait_partitions(self.states.keys())
        busy = {j.partition for j in self.evaluator._pending}
        ready = [s for k, s in self.states.items() if k not in busy]
        for k in busy:
            log.warning("evaluation in flight abandoned at shutdown; its partition is not checkpointed and "
                        "replays from the previous checkpoint", extra={"partition": k[1]})
        ok = False
        with anyio.move_on_after(SHUTDOWN_CHECKPOINT_BUDGET_S):
            ok = await self.checkpoint(ready, reason="shutdown")
        if not ok:
            raise RuntimeError(f"the final checkpoint could not be written: {self.degraded or 'timed out'}")

    async def watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("signal received, stopping", extra={"signal": signal.Signals(signum).name})
                self.stopping = True
                self.metrics.ready.set(0)
                return

    async def run(self) -> None:
        cfg = self.cfg
        # Threads hand the GIL over every millisecond instead of every five: the HTTP thread answers a
        # probe promptly while a worker thread snapshots a checkpoint or runs an evaluation.
        sys.setswitchinterval(0.001)
        await ensure_topics(cfg)
        await self.publisher.start()
        daemon = self

        class Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                try:
                    await daemon.on_revoked(set(revoked))
                except BaseException as err:
                    daemon._fatal = err
                    raise

            async def on_partitions_assigned(self, assigned: Any) -> None:
                try:
                    await daemon.on_assigned(set(assigned))
                except BaseException as err:
                    daemon._fatal = err
                    raise

        kw = client_kwargs(cfg.kafka)
        self.consumer = AIOKafkaConsumer(
            **kw, group_id=cfg.kafka.group_id, enable_auto_commit=False, auto_offset_reset="none",
            session_timeout_ms=cfg.kafka.session_timeout_ms, heartbeat_interval_ms=cfg.kafka.heartbeat_interval_ms,
            max_poll_interval_ms=max(300_000, int(cfg.evaluation.timeout_s * 2000)),
            fetch_max_bytes=max(52_428_800, cfg.kafka.max_message_bytes * 4),
            max_partition_fetch_bytes=max(1_048_576, cfg.kafka.max_message_bytes * 2),
        )
        self.admin_consumer = AIOKafkaConsumer(**kw, group_id=None, enable_auto_commit=False,
                                               auto_offset_reset="none")
        await self.admin_consumer.start()
        admin_parts = self.admin_consumer.partitions_for_topic(cfg.kafka.topics.admin) or {0}
        self.admin_consumer.assign([TopicPartition(cfg.kafka.topics.admin, p) for p in sorted(admin_parts)])
        await self.consumer.start()
        self.consumer.subscribe([self.topic], listener=Listener())
        heartbeat = Heartbeat()
        http = HttpServer(HttpApp(self.metrics, lambda: self._fatal is None, lambda: self.ready, self.status,
                                  heartbeat), cfg.http.host, cfg.http.port)
        try:
            self.http_port = http.start(asyncio.get_running_loop())
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(heartbeat_loop, heartbeat, self.metrics.loop_lag.observe)
                tg.start_soon(self.watch_signals)
                tg.start_soon(self.evaluator.run)
                tg.start_soon(self.admin_loop)
                tg.start_soon(self.broker_probe)
                await self.consume_loop()
                await self.shutdown_checkpoint()
                self._tg = None
                tg.cancel_scope.cancel()
        finally:
            http.stop()
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                for rid in list(self._locks):
                    self._release_router(rid)
                await self.consumer.stop()
                await self.admin_consumer.stop()
                await self.publisher.stop()
        log.info("daemon stopped")
