"""The router events topic, read for one router: its promotions and rollbacks, deduplicated, in order.

The feed knows nothing of loading: it hands each new ``router.promoted`` or ``router.rolled_back``
for its router to a ``deliver`` coroutine and waits for it, so versions are requested in the
order the daemon published them. Events are deduplicated by ``event_id`` (the daemon may
re-publish one after a crash). ``open`` resolves the end offsets *before* the follower's initial
load, so an event published while the follower starts is seen rather than lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import UnknownTopicOrPartitionError

from memabrad.config import KafkaConfig
from memabrad.kafka.client import client_kwargs
from memabrad.kafka.topics import ensure_topics, topic_partitions
from memabrad.sdk._kafka import as_config
from memabrad.sdk.swap import SwapRequest
from memabrad.wire.events import InvalidRouterEvent, RouterPromoted, RouterRolledBack, parse_router_event

__all__ = ["BACKLOG_BUDGET_S", "FETCH_MAX_WAIT_MS", "SEEN_EVENT_IDS", "RouterEventFeed"]

log = logging.getLogger("memabrad.sdk.follower")  # the follower's logger: operators filter one name

SEEN_EVENT_IDS = 10_000
"""Event ids remembered for deduplication (re-publications follow the original closely)."""
FETCH_MAX_WAIT_MS = 100
"""How long the broker may hold an empty fetch: bounds how late an event is noticed."""
BACKLOG_BUDGET_S = 2.0
"""At most this long at start to skip events already reflected in the store."""


class RouterEventFeed:
    """Version changes of ``router_id`` from ``topic``, each awaited in ``deliver`` before the next is read.

    ``create_topic`` creates a missing topic (one partition), for local experiments. The feed
    may be opened again after ``close``; it keeps its counters and the event ids it has seen.
    """

    def __init__(self, kafka: KafkaConfig, topic: str, router_id: str,
                 deliver: Callable[[SwapRequest], Awaitable[None]], *, create_topic: bool = False) -> None:
        self.kafka = kafka
        self.topic = topic
        self.router_id = router_id
        self.create_topic = create_topic
        self.events_seen = 0
        """Valid router events read for this router (any type)."""
        self.duplicate_events = 0
        self.invalid_events = 0
        self._deliver = deliver
        self._seen_ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def is_open(self) -> bool:
        return self._consumer is not None

    async def open(self) -> None:
        """Position on the topic's end and skip what is readable already (the initial load covers it)."""
        if self.create_topic:
            await ensure_topics(as_config(self.kafka), names=[self.topic])
        try:
            count = await topic_partitions(as_config(self.kafka), self.topic)
        except UnknownTopicOrPartitionError:
            raise UnknownTopicOrPartitionError(
                f"router events topic {self.topic!r} does not exist: start the daemon (or create the topics) first, "
                "or pass create_topic=True") from None
        consumer = AIOKafkaConsumer(**client_kwargs(self.kafka), group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="latest", fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in range(count)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve now: events published from here on are ours, even during the initial load
                await consumer.position(tp)
            await self._skip_backlog(consumer)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    async def run(self) -> None:
        """Read and deliver until cancelled; read errors are retried with backoff (the store poll covers the gap)."""
        consumer = self._consumer
        assert consumer is not None, "open() the feed first"
        backoff = 0.5
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - keep following; the poll loop covers the gap
                log.warning("router events: read failed, retrying in %.1fs: %r", backoff, err)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            received = time.time()
            for records in batches.values():
                for record in records:
                    await self._on_record(record, received)

    async def _skip_backlog(self, consumer: AIOKafkaConsumer) -> None:
        """Mark as seen what is readable right away; the initial load, which comes after, reflects it.

        With Kafka the end position has nothing behind it and this returns after one empty
        fetch. Some brokers (the embedded Tansu) report the end of a partition as one past the
        *first* record of its last batch, which would replay the rest of that batch as new.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BACKLOG_BUDGET_S
        while loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=FETCH_MAX_WAIT_MS * 2)
            if not batches:
                return
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(InvalidRouterEvent):
                        self._is_new(parse_router_event(record.value if record.value is not None else b"").event_id)

    def _is_new(self, event_id: str) -> bool:
        if event_id in self._seen_ids:
            return False
        self._seen_ids[event_id] = None
        if len(self._seen_ids) > SEEN_EVENT_IDS:
            self._seen_ids.popitem(last=False)
        return True

    async def _on_record(self, record: Any, received: float) -> None:
        try:
            event = parse_router_event(record.value if record.value is not None else b"")
        except InvalidRouterEvent as err:
            self.invalid_events += 1
            log.debug("ignoring an invalid router event at %s:%s: %s", record.partition, record.offset, err.reason)
            return
        if event.router_id != self.router_id:
            return
        self.events_seen += 1
        if not isinstance(event, RouterPromoted | RouterRolledBack):
            return
        if not self._is_new(event.event_id):
            self.duplicate_events += 1
            return
        published = record.timestamp / 1000.0 if record.timestamp and record.timestamp > 0 else None
        await self._deliver(SwapRequest(event.version_id, event.type, event.event_id, published, received))
