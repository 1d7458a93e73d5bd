"""``memabrad run``: the daemon's task group and its I/O loops.

One anyio task group on asyncio holds the trajectory consumer, the evaluator, the
admin reader, the HTTP server and the signal watcher. Any task failing cancels the
group and the process exits non-zero with the cause logged — never half alive.

This module only wires the rooms together and runs the loops: the per-record step is
``records`` (pure), batches are learned by ``ingest``, routers (stores, locks, active
versions, guards) are ``routers``, partition positions are ``positions``, the admin
topic is ``admin_reader``, and the commit order is the ``Checkpointer``'s. See
``docs/reliability.md`` for every failure point and what a restart does.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError, NoOffsetForPartitionError, OffsetOutOfRangeError

from memabrad.config import Config
from memabrad.daemon.admin import AdminHandler
from memabrad.daemon.admin_reader import AdminReader
from memabrad.daemon.checkpoint import Checkpointer, CheckpointStore
from memabrad.daemon.evaluator import EvaluationRunner
from memabrad.daemon.http import Heartbeat, HttpApp, HttpServer, heartbeat_loop
from memabrad.daemon.ingest import Ingest
from memabrad.daemon.metrics import DaemonMetrics
from memabrad.daemon.partition import PartitionState
from memabrad.daemon.positions import Positions
from memabrad.daemon.publisher import Publisher, PublishError
from memabrad.daemon.rebalance import Rebalance
from memabrad.daemon.routers import RouterRegistry
from memabrad.daemon.status import StatusView
from memabrad.evaluation.benchmark import load_suite
from memabrad.kafka.client import client_kwargs
from memabrad.kafka.topics import ensure_topics
from memabrad.store.errors import StoreError

log = logging.getLogger("memabrad.daemon")
SHUTDOWN_EVAL_BUDGET_S = 3.0  # waiting for evaluations in flight, then
SHUTDOWN_CHECKPOINT_BUDGET_S = 6.0  # the final checkpoint: SIGTERM exits within 10 s


class FatalError(RuntimeError):
    """Raised into the main loop when a background callback failed."""


@dataclass
class Daemon:
    cfg: Config
    metrics: DaemonMetrics = field(default_factory=DaemonMetrics)
    degraded: str | None = None  # why checkpoints currently fail (disk, broker); None when healthy
    broker_ok: bool = True
    http_port: int | None = None

    def __post_init__(self) -> None:
        cfg, m = self.cfg, self.metrics
        self.stop_requested = threading.Event()  # set on SIGTERM/SIGINT; every loop checks it
        self.state_lock = anyio.Lock()  # guards the partition states (records, admin, checkpoints)
        self.publisher = Publisher(cfg)
        ckpt_store = CheckpointStore(cfg.store.base_dir, cfg.kafka.group_id, cfg.checkpoint.generations)
        self.positions = Positions(cfg, m, ckpt_store, self.state_lock)
        self.routers = RouterRegistry(cfg, m, self.publisher, self.positions, self.state_lock)
        suite = load_suite(cfg.evaluation.suite_path) if cfg.evaluation.suite_path else []
        self.evaluator = EvaluationRunner(cfg, m, self.publisher.publish_event, self.routers, suite)
        self.checkpointer = Checkpointer(ckpt_store, self.publisher.flush, self.evaluator.wait_partitions,
                                         self.positions.commit, self._on_checkpoint_written)
        handler = AdminHandler(cfg, m, self.publisher.publish_event, self.routers, self.evaluator)
        self.admin = AdminReader(cfg, m, handler, self.positions, self.state_lock, self.stop_requested)
        self.ingest = Ingest(cfg, m, self.positions, self.routers, self.evaluator, self.publisher, self.state_lock,
                             self.stop_requested)
        self.status_view = StatusView(self.positions, self.routers, self.evaluator)
        self.rebalance = Rebalance(m, self.positions, self.routers, self.ingest, self.admin, self.state_lock,
                                   self.checkpoint, lambda: self.ready)
        self._last_checkpoint = time.monotonic()
        self._checkpoint_failures = 0
        self._retry_at = 0.0
        self.consumer: AIOKafkaConsumer | None = None

    @property
    def stopping(self) -> bool:
        return self.stop_requested.is_set()

    @property
    def ready(self) -> bool:
        """State loaded, partitions assigned, checkpoints and broker healthy, not shutting down."""
        return self.rebalance.assigned and not self.stopping and self.degraded is None and self.broker_ok

    def status(self) -> dict[str, Any]:
        return self.status_view.build(self.ready)

    # -- consume loop -------------------------------------------------------------------

    async def consume_loop(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        while not self.stopping:
            failure = self.rebalance.failure
            if failure is not None:
                raise FatalError(f"a rebalance callback failed: {failure}") from failure
            try:
                batch = await consumer.getmany(timeout_ms=300, max_records=self.cfg.kafka.fetch_max_records)
            except OffsetOutOfRangeError as err:
                await self.positions.out_of_range(err)
                continue
            except NoOffsetForPartitionError as err:
                await self.positions.no_offset(err)
                continue
            if batch:
                await self.ingest.process_batch(batch)
            else:
                await self.positions.check_log_behind()
            if self._checkpoint_due():
                await self.checkpoint()

    # -- checkpoints --------------------------------------------------------------------

    async def checkpoint(self, states: list[PartitionState] | None = None, reason: str = "periodic") -> bool:
        """Checkpoint and commit; on failure stay up, not ready, and retry with backoff."""
        if reason == "periodic" and time.monotonic() < self._retry_at:
            return False
        started = time.perf_counter()
        try:
            async with self.state_lock:
                chosen = self.positions.all() if states is None else states
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
        pending = sum(s.records_since_checkpoint for s in self.positions.states.values())
        if pending == 0 or time.monotonic() < self._retry_at:
            return False
        elapsed = time.monotonic() - self._last_checkpoint
        return self.degraded is not None or pending >= c.every_n or elapsed >= c.interval_s

    def _on_checkpoint_written(self, state: PartitionState, path: Path) -> None:
        self.metrics.checkpoints.labels("written").inc()
        log.debug("checkpoint", extra={"partition": state.partition, "offset": state.next_offset, "file": str(path)})

    async def shutdown_checkpoint(self) -> None:
        """Final checkpoint on SIGTERM: skip partitions whose evaluation cannot finish in the budget."""
        states = self.positions.states
        with anyio.move_on_after(SHUTDOWN_EVAL_BUDGET_S):
            await self.evaluator.wait_partitions(states.keys())
        busy = self.evaluator.busy_partitions()
        ready = [s for k, s in states.items() if k not in busy]
        for k in busy:
            log.warning("evaluation in flight abandoned at shutdown; its partition is not checkpointed and "
                        "replays from the previous checkpoint", extra={"partition": k[1]})
        ok = False
        with anyio.move_on_after(SHUTDOWN_CHECKPOINT_BUDGET_S):
            ok = await self.checkpoint(ready, reason="shutdown")
        if not ok:
            raise RuntimeError(f"the final checkpoint could not be written: {self.degraded or 'timed out'}")

    # -- probe and signals --------------------------------------------------------------

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

    async def watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("signal received, stopping", extra={"signal": signal.Signals(signum).name})
                self.stop_requested.set()
                self.metrics.ready.set(0)
                return

    # -- main ---------------------------------------------------------------------------

    async def run(self) -> None:
        cfg = self.cfg
        # Threads hand the GIL over every 5 ms (CPython's default), set here so nothing in the process
        # changes it. A 1 ms interval was meant to let the HTTP thread answer sooner while a worker thread
        # evaluates; measured (docs/benchmarks.md), it did the opposite: the main and evaluator threads
        # traded the lock five times as often, costing 9-14 % more CPU per trajectory and a higher /healthz p99.
        sys.setswitchinterval(0.005)
        await ensure_topics(cfg)
        await self.publisher.start()
        kw = client_kwargs(cfg.kafka)
        self.consumer = AIOKafkaConsumer(
            **kw, group_id=cfg.kafka.group_id, enable_auto_commit=False, auto_offset_reset="none",
            session_timeout_ms=cfg.kafka.session_timeout_ms, heartbeat_interval_ms=cfg.kafka.heartbeat_interval_ms,
            max_poll_interval_ms=max(300_000, int(cfg.evaluation.timeout_s * 2000)),
            fetch_max_bytes=max(52_428_800, cfg.kafka.max_message_bytes * 4),
            max_partition_fetch_bytes=max(1_048_576, cfg.kafka.max_message_bytes * 2),
            fetch_max_wait_ms=cfg.kafka.fetch_max_wait_ms,
        )
        self.positions.attach(self.consumer)
        await self.admin.start(kw)
        await self.consumer.start()
        self.consumer.subscribe([cfg.kafka.topics.trajectories], listener=self.rebalance)
        heartbeat = Heartbeat()
        app = HttpApp(self.metrics, lambda: self.rebalance.failure is None, lambda: self.ready, self.status, heartbeat)
        http = HttpServer(app, cfg.http.host, cfg.http.port)
        try:
            self.http_port = http.start(asyncio.get_running_loop())
            async with anyio.create_task_group() as tg:
                self.routers.attach(tg)
                tg.start_soon(heartbeat_loop, heartbeat, self.metrics.loop_lag.observe)
                tg.start_soon(self.watch_signals)
                tg.start_soon(self.evaluator.run)
                tg.start_soon(self.admin.run)
                tg.start_soon(self.broker_probe)
                await self.consume_loop()
                await self.shutdown_checkpoint()
                self.routers.attach(None)
                tg.cancel_scope.cancel()
        finally:
            http.stop()
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                for rid in self.routers.held():
                    self.routers.release(rid)
                await self.consumer.stop()
                await self.admin.stop()
                await self.publisher.stop()
        log.info("daemon stopped")
