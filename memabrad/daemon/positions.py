"""The trajectory partitions this instance owns: their states, and where the consumer reads each.

The checkpoint, not the group's committed offset, is the source of truth for a position:
an assigned partition is sought to its checkpoint's ``next_offset`` (or its beginning when
it has none), and a log that no longer holds that position is handled by a documented rule,
never by a silent reset (``docs/reliability.md``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import anyio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, NoOffsetForPartitionError, OffsetOutOfRangeError

from memabrad.config import Config
from memabrad.daemon.checkpoint import CheckpointStore, describe
from memabrad.daemon.metrics import DaemonMetrics
from memabrad.daemon.partition import PartitionState
from memabrad.kafka.client import partition_for_key

log = logging.getLogger("memabrad.daemon")
COMMIT_TIMEOUT_S = 5.0
PartitionKey = tuple[str, int]


class Positions:
    """Owned partition states by (topic, partition), their consumer positions and lag gauges."""

    def __init__(self, cfg: Config, metrics: DaemonMetrics, ckpt_store: CheckpointStore,
                 state_lock: anyio.Lock) -> None:
        self.cfg = cfg
        self.topic = cfg.kafka.topics.trajectories
        self.metrics = metrics
        self.ckpt_store = ckpt_store
        self.state_lock = state_lock
        self.states: dict[PartitionKey, PartitionState] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self._partitions_count: int | None = None
        self._lag: dict[TopicPartition, Any] = {}

    def attach(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    def _consumer(self) -> AIOKafkaConsumer:
        assert self.consumer is not None, "no consumer attached"
        return self.consumer

    def owner(self, router_id: str) -> PartitionState | None:
        """The state of the partition the router's records are keyed to, if this instance owns it."""
        if not self._partitions_count:
            return None
        return self.states.get((self.topic, partition_for_key(router_id, self._partitions_count)))

    def all(self) -> list[PartitionState]:
        return list(self.states.values())

    def owned(self, tps: set[TopicPartition]) -> list[PartitionState]:
        return [self.states[k] for tp in tps if (k := (tp.topic, tp.partition)) in self.states]

    # -- rebalance (the caller holds the state lock) ----------------------------------

    async def assign(self, assigned: set[TopicPartition]) -> list[PartitionState]:
        """Restore the newly assigned partitions from their checkpoints and seek each there."""
        consumer = self._consumer()
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
                consumer.seek(tp, r.state.next_offset)
                log.info("restored partition from checkpoint", extra={
                    "partition": tp.partition, "offset": r.state.next_offset, "file": str(r.path),
                    "routers": sorted(r.state.learners)})
        if fresh:
            await consumer.seek_to_beginning(*fresh)
            log.info("no checkpoint: consuming from the beginning", extra={"partitions": [t.partition for t in fresh]})
        self._partitions_count = len(consumer.partitions_for_topic(self.topic) or []) or None
        return [r.state for r in restored.values()]

    def drop(self, revoked: set[TopicPartition]) -> list[PartitionState]:
        """Forget revoked partitions: their states go, with their lag gauges."""
        dropped = []
        for tp in revoked:
            state = self.states.pop((tp.topic, tp.partition), None)
            if state is None:
                continue
            dropped.append(state)
            self._lag.pop(tp, None)
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(tp.topic, str(tp.partition))
        return dropped

    # -- progress ---------------------------------------------------------------------

    def record_lag(self, tp: TopicPartition, state: PartitionState) -> None:
        hw = self._consumer().highwater(tp)
        if hw is None or state.next_offset is None:
            return
        gauge = self._lag.get(tp)
        if gauge is None:
            gauge = self._lag[tp] = self.metrics.consumer_lag.labels(tp.topic, str(tp.partition))
        gauge.set(max(0, hw - state.next_offset))

    async def commit(self, offsets: dict[PartitionKey, int]) -> None:
        """Commit checkpointed offsets of partitions still assigned; a failure only logs (the checkpoint,
        already durable, stays authoritative)."""
        consumer = self._consumer()
        owned = consumer.assignment()
        tps = {TopicPartition(t, p): o for (t, p), o in offsets.items() if TopicPartition(t, p) in owned}
        if not tps:
            return
        with anyio.move_on_after(COMMIT_TIMEOUT_S) as scope:
            try:
                await consumer.commit(tps)
            except KafkaError as err:
                log.warning("offset commit failed; the checkpoint stays authoritative",
                            extra={"error": repr(err), "offsets": describe(offsets)})
        if scope.cancelled_caught:
            log.warning("offset commit timed out; the checkpoint stays authoritative")

    # -- positions the log no longer holds --------------------------------------------

    async def out_of_range(self, err: OffsetOutOfRangeError) -> None:
        """The broker refused our position: apply the documented rule to those partitions."""
        positions = err.args[0] if err.args and isinstance(err.args[0], dict) else {}
        await self._reposition(list(positions) or sorted(self._consumer().assignment()))

    async def check_log_behind(self) -> None:
        """Some brokers answer a position past the log's end with an empty fetch instead of an error;
        the fetch highwater then sits below our position, which never happens otherwise."""
        consumer = self._consumer()
        behind = []
        for tp in consumer.assignment():
            state = self.states.get((tp.topic, tp.partition))
            hw = consumer.highwater(tp)
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
        consumer = self._consumer()
        starts = await consumer.beginning_offsets(tps)
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
                                 "highwater": consumer.highwater(tp), "rule": rule, "records_lost": gap})
                state.next_offset = start
                state.records_since_checkpoint += 1
                consumer.seek(tp, start)

    async def no_offset(self, err: NoOffsetForPartitionError) -> None:
        """The fetcher wanted a position before the assignment callback set it: set it from our state."""
        consumer = self._consumer()
        async with self.state_lock:
            for tp in sorted(consumer.assignment()):
                state = self.states.get((tp.topic, tp.partition))
                if state is not None and state.next_offset is not None:
                    consumer.seek(tp, state.next_offset)
                elif state is not None:
                    await consumer.seek_to_beginning(tp)
        log.info("positions set from checkpoints after the fetcher asked for them", extra={"error": str(err)})
