"""Reads the admin topic (every partition, no group) and hands each command to the handler.

How far each trajectory partition's routers have read the admin topic is part of that
partition's checkpoint (``admin_offsets``), so the reader starts from the lowest saved
position of the partitions owned, and the handler skips what a state has already seen.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

import anyio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from memabrad.config import Config
from memabrad.daemon.admin import AdminHandler, AdminMessage
from memabrad.daemon.metrics import DaemonMetrics
from memabrad.daemon.partition import PartitionState

log = logging.getLogger("memabrad.daemon")


class PartitionStates(Protocol):
    def all(self) -> list[PartitionState]: ...


class AdminReader:
    def __init__(self, cfg: Config, metrics: DaemonMetrics, handler: AdminHandler, partitions: PartitionStates,
                 state_lock: anyio.Lock, stop: threading.Event) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.handler = handler
        self.partitions = partitions
        self.state_lock = state_lock
        self.stop_requested = stop
        self.consumer: AIOKafkaConsumer | None = None
        self._reseek = anyio.Event()

    async def start(self, client_kw: dict[str, Any]) -> None:
        """Connect and take every admin partition (positions are set once trajectory partitions arrive)."""
        self.consumer = AIOKafkaConsumer(**client_kw, group_id=None, enable_auto_commit=False,
                                         auto_offset_reset="none")
        await self.consumer.start()
        topic = self.cfg.kafka.topics.admin
        parts = self.consumer.partitions_for_topic(topic) or {0}
        self.consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def prepare(self) -> None:
        """Give fresh partitions an admin start position (the current end) and re-seek the reader."""
        ac = self.consumer
        if ac is None:
            return
        tps = sorted(ac.assignment())
        for tp in tps:
            fresh = [s for s in self.partitions.all() if tp.partition not in s.admin_offsets]
            if fresh:
                await ac.seek_to_end(tp)
                end = await ac.position(tp)
                for s in fresh:
                    s.admin_offsets[tp.partition] = end
        for tp in tps:
            positions = [s.admin_offsets[tp.partition] for s in self.partitions.all()
                         if tp.partition in s.admin_offsets]
            if positions:
                ac.seek(tp, min(positions))
            else:  # no router of ours: nothing to act on, just follow the end
                await ac.seek_to_end(tp)
        self._reseek.set()

    async def _out_of_range(self, err: OffsetOutOfRangeError) -> None:
        """The admin log is behind our saved positions (broker lost its data): start over from its beginning."""
        ac = self.consumer
        assert ac is not None
        positions = err.args[0] if err.args and isinstance(err.args[0], dict) else {}
        tps = list(positions) or sorted(ac.assignment())
        starts = await ac.beginning_offsets(tps)
        ends = await ac.end_offsets(tps)
        async with self.state_lock:
            for tp in tps:
                for state in self.partitions.all():
                    at = state.admin_offsets.get(tp.partition, 0)
                    if at > ends[tp] or at < starts[tp]:
                        state.admin_offsets[tp.partition] = starts[tp]
                        state.records_since_checkpoint += 1
                self.metrics.offset_resets.labels(f"admin-{tp.partition}", "admin_log_reset").inc()
                log.error("admin topic offset out of range; reading it from its beginning",
                          extra={"partition": tp.partition, "log_start": starts[tp], "log_end": ends[tp]})
                ac.seek(tp, starts[tp])

    async def run(self) -> None:
        ac = self.consumer
        assert ac is not None
        await self._reseek.wait()  # positions come from the partitions' checkpoints
        while not self.stop_requested.is_set():
            try:
                batch = await ac.getmany(timeout_ms=300, max_records=100)
            except OffsetOutOfRangeError as err:
                await self._out_of_range(err)
                continue
            for tp, msgs in batch.items():
                for msg in msgs:
                    async with self.state_lock:
                        await self.handler.handle(AdminMessage(tp.partition, msg.offset, msg.key, msg.value))
