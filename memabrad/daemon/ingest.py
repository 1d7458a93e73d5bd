"""Learning fetched batches: the record step in time slices, and acting on each record's outcome.

A slice holds the state lock for at most ``SLICE_S`` of processing, then releases it and
yields, so the HTTP probes, admin commands, heartbeats and the evaluator get their turn
however large the backlog. Between slices ingest also waits while the evaluator has
``MAX_PENDING`` looks queued or running (backpressure; see ``daemon/evaluator.py``).

What a record asks for — a dead letter, the guard's rollback, an evaluation — is done right
after its step, before the next record, so a replay after a crash repeats it at the same
position.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import anyio
from aiokafka import TopicPartition

from memabrad.config import Config
from memabrad.daemon.metrics import DaemonMetrics
from memabrad.daemon.partition import PartitionState
from memabrad.daemon.positions import Positions
from memabrad.daemon.records import DUPLICATE, RecordStep, parse
from memabrad.learning.learner import RouterLearner
from memabrad.promotion.guard import GuardTrip
from memabrad.wire.parse import InvalidTrajectory

SLICE_S = 0.005  # the longest stretch of record processing between two yields to the event loop


class RecordRouters(Protocol):
    async def adopt(self, state: PartitionState, router_id: str) -> RouterLearner: ...

    async def guard_tripped(self, state: PartitionState, router_id: str, trip: GuardTrip) -> None: ...


class EvaluationQueue(Protocol):
    def evaluate(self, partition: tuple[str, int], learner: RouterLearner) -> None: ...

    async def wait_for_room(self, stop: threading.Event) -> None: ...


class DeadLetters(Protocol):
    async def send_dead_letter(self, *, key: bytes | None, value: bytes | None, reason: str, field: str,
                               source: str) -> None: ...


class Ingest:
    def __init__(self, cfg: Config, metrics: DaemonMetrics, positions: Positions, routers: RecordRouters,
                 evaluations: EvaluationQueue, dead_letters: DeadLetters, state_lock: anyio.Lock,
                 stop: threading.Event) -> None:
        self.metrics = metrics
        self.positions = positions
        self.routers = routers
        self.evaluations = evaluations
        self.dead_letters = dead_letters
        self.state_lock = state_lock
        self.stop_requested = stop
        self.step = RecordStep(cfg)
        self.max_bytes = cfg.kafka.max_message_bytes
        self._counters: dict[tuple[str, str], Any] = {}  # metric children, looked up once per label pair
        self._gauges: dict[str, Any] = {}

    def forget(self, router_id: str) -> None:
        """The router left this instance; its gauge was removed with it."""
        self._gauges.pop(router_id, None)

    async def process_batch(self, batch: dict[TopicPartition, list[Any]]) -> int:
        """Learn a fetched batch in time slices of ``SLICE_S``, yielding to the event loop (HTTP, admin,
        heartbeats, the evaluator) and releasing the state lock between slices."""
        n = 0
        observe = self.metrics.event_processing.observe
        age = self.metrics.record_age.observe
        clock = time.perf_counter
        states = self.positions.states
        for tp, msgs in batch.items():
            key = (tp.topic, tp.partition)
            i, total = 0, len(msgs)
            while i < total and not self.stop_requested.is_set():  # on SIGTERM the rest replays from the checkpoint
                async with self.state_lock:
                    state = states.get(key)
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
                        await self._record(state, msg)
                        state.next_offset = msg.offset + 1
                        state.records_since_checkpoint += 1
                        done = clock()
                        observe(done - start)
                        if msg.timestamp and msg.timestamp > 0:
                            age(max(0.0, wall0 + (done - t0) - msg.timestamp / 1000.0))
                        n += 1
                        if done >= slice_end:
                            break
                    self.positions.record_lag(tp, state)
                await anyio.sleep(0)
                await self.evaluations.wait_for_room(self.stop_requested)  # looks must not queue up unbounded
        return n

    async def _record(self, state: PartitionState, msg: Any) -> None:
        """One record: its step, then what the outcome asks for."""
        record = parse(msg.value, self.max_bytes)
        if not isinstance(record, InvalidTrajectory) and record.router_id not in state.learners:
            await self.routers.adopt(state, record.router_id)
        out = self.step.apply(state, record, msg.key)
        rid = out.router_id
        counter = self._counters.get((rid, out.result))
        if counter is None:
            counter = self._counters[(rid, out.result)] = self.metrics.trajectories.labels(rid, out.result)
        counter.inc()
        if out.invalid is not None:
            err = out.invalid
            self.metrics.invalid.labels(err.code).inc()
            source = f"{msg.topic}:{msg.partition}:{msg.offset}"
            await self.dead_letters.send_dead_letter(key=msg.key, value=msg.value, reason=err.reason,
                                                     field=err.field, source=source)
            return
        if out.result == DUPLICATE:
            return
        if out.trip is not None:
            await self.routers.guard_tripped(state, rid, out.trip)
        learner = out.learner
        assert learner is not None
        if out.evaluate:
            self.evaluations.evaluate((state.topic, state.partition), learner)
        gauge = self._gauges.get(rid)
        if gauge is None:
            gauge = self._gauges[rid] = self.metrics.since_evaluation.labels(rid)
        gauge.set(learner.counters.since_evaluation)
