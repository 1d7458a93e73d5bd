"""The one Kafka producer behind the daemon, the SDK and the CLI.

It builds the aiokafka client from the ``kafka`` config (TLS/SASL included) with the
flags every broker we run against supports: ``acks="all"`` and no idempotence (the
embedded broker lacks it; consumers dedupe by id). Records handed over but not yet
acknowledged are bounded (``max_in_flight``), so a slow or absent broker makes senders
wait instead of growing memory. Losses are never silent: each record's callback gets
its error, and ``failed`` / ``last_error`` count them.

Single records go through one background task, so they keep their order and ``submit``
never waits; ``send_batches`` is the bulk path for callers that hold many records at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import AIOKafkaProducer

from memabrad.config import KafkaConfig
from memabrad.kafka.client import client_kwargs, partition_for_key

__all__ = [
    "Done",
    "OutRecord",
    "ProducerNotRunning",
    "ProducerSettings",
    "ProducerStopped",
    "RecordProducer",
    "producer_kwargs",
]

log = logging.getLogger("memabrad.producer")

MIN_REQUEST_BYTES: Final = 2_097_152
"""Floor of ``max_request_size``, so a request always fits the largest accepted record."""
STOP_AFTER_FAILED_START_S: Final = 5.0

Done = Callable[[BaseException | None], None]
"""Called once per record (or batch): ``None`` when acknowledged, else the error."""


class ProducerNotRunning(RuntimeError):
    """``send`` before ``start`` or after ``stop``."""


class ProducerStopped(Exception):
    """The producer stopped (or the delivery was cancelled) before the broker acknowledged the record."""


@dataclass(frozen=True, slots=True, eq=False)
class OutRecord:
    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes]] | None = None


@dataclass(frozen=True, slots=True)
class ProducerSettings:
    """How one producer batches and bounds its records; ``None`` keeps aiokafka's default."""

    linger_ms: int = 5
    max_batch_bytes: int | None = None
    request_timeout_ms: int | None = None
    max_in_flight: int | None = None
    """Records handed over but not yet acknowledged; ``None``: unbounded."""
    max_record_bytes: int | None = None
    """Largest value sent, to size requests; ``None``: ``kafka.max_message_bytes``."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Extra ``AIOKafkaProducer`` arguments; they win over everything above."""

    def __post_init__(self) -> None:
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")


def producer_kwargs(kafka: KafkaConfig, settings: ProducerSettings) -> dict[str, Any]:
    """``AIOKafkaProducer`` keyword arguments: security from ``kafka``, tuning from ``settings``."""
    record_bytes = kafka.max_message_bytes if settings.max_record_bytes is None else settings.max_record_bytes
    kw: dict[str, Any] = {
        **client_kwargs(kafka),
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": settings.linger_ms,
        "max_request_size": max(record_bytes * 2, MIN_REQUEST_BYTES),
    }
    if settings.max_batch_bytes is not None:
        kw["max_batch_size"] = settings.max_batch_bytes
    if settings.request_timeout_ms is not None:
        kw["request_timeout_ms"] = settings.request_timeout_ms
    kw.update(settings.options)
    return kw


@dataclass(eq=False, slots=True)
class _Entry:
    record: OutRecord | None
    """None for a batch, which is handed to aiokafka directly."""
    count: int
    on_done: Done | None
    done: bool = False


class RecordProducer:
    """An aiokafka producer with bounded in-flight records, counted outcomes and a bounded shutdown."""

    def __init__(self, kafka: KafkaConfig, settings: ProducerSettings | None = None, *,
                 name: str = "memabrad-producer") -> None:
        self.kafka = kafka
        self.settings = settings or ProducerSettings()
        self.name = name
        self.sent = 0
        """Records handed over (queued or batched)."""
        self.delivered = 0
        """Records acknowledged by the broker."""
        self.failed = 0
        """Records that will never be acknowledged."""
        self.last_error: BaseException | None = None
        self._producer: AIOKafkaProducer | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._queue: collections.deque[_Entry] = collections.deque()
        self._pending: set[_Entry] = set()
        self._in_flight = 0
        self._wake, self._room, self._idle = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    @property
    def in_flight(self) -> int:
        """Records handed over but not yet acknowledged (or failed)."""
        return self._in_flight

    @property
    def full(self) -> bool:
        limit = self.settings.max_in_flight
        return limit is not None and self._in_flight >= limit

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect; raises if the broker is unreachable, leaving nothing open."""
        if self._running:
            return
        producer = AIOKafkaProducer(**producer_kwargs(self.kafka, self.settings))
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), STOP_AFTER_FAILED_START_S)
            raise
        self._producer = producer
        # Events are made here, on the loop that uses them: a producer may be restarted on another loop.
        self._wake, self._room, self._idle = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._room.set()
        self._idle.set()
        self._running = True
        self._pump_task = asyncio.create_task(self._pump(), name=self.name)

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Deliver what is pending (up to ``timeout`` s), then disconnect.

        Records still unacknowledged then fail with ``ProducerStopped``. Never raises:
        a dead broker must not hang or break the caller's shutdown.
        """
        if not self._running:
            return
        self._running = False
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
            self._pump_task = None
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout)
        for entry in [*self._queue, *self._pending]:
            self._complete(entry, ProducerStopped("producer stopped before the broker acknowledged the record"))
        self._queue.clear()
        self._room.set()

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every record handed over so far is acknowledged or failed.

        Raises ``TimeoutError`` when ``timeout`` seconds pass first.
        """
        if self._in_flight:
            self._wake.set()
            await asyncio.wait_for(self._idle.wait(), timeout)

    # -- single records ---------------------------------------------------------------------

    async def wait_for_room(self) -> None:
        """Return once fewer than ``max_in_flight`` records are unacknowledged, or the producer stopped."""
        while self._running and self.full:
            self._room.clear()
            await self._room.wait()

    def submit(self, record: OutRecord, on_done: Done | None = None) -> None:
        """Queue one record without waiting; the caller keeps within the bound (``full``, ``wait_for_room``).

        On a stopped producer the record fails at once with ``ProducerNotRunning``.
        """
        entry = _Entry(record, 1, on_done)
        self._accept(entry)
        if not self._running:
            self._complete(entry, ProducerNotRunning("the producer is not running"))
            return
        self._queue.append(entry)
        self._wake.set()

    async def send(self, record: OutRecord, on_done: Done | None = None) -> None:
        """Queue one record, first waiting for room while ``max_in_flight`` records are unacknowledged."""
        await self.wait_for_room()
        self.submit(record, on_done)

    async def send_and_wait(self, record: OutRecord) -> None:
        """Send one record and wait for the broker; raises its delivery error."""
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle(error: BaseException | None) -> None:
            if acked.done():
                return
            if error is None:
                acked.set_result(None)
            else:
                acked.set_exception(error)

        await self.send(record, settle)
        await acked

    # -- bulk -------------------------------------------------------------------------------

    async def partitions_for(self, topic: str) -> list[int]:
        """The topic's partitions (fetching its metadata when not known yet)."""
        return sorted(await self._client().partitions_for(topic))

    async def send_batches(self, topic: str, partitions: list[int], pairs: Iterable[tuple[bytes, bytes]]) -> None:
        """Send keyed records as explicit per-partition batches and wait for them all.

        Building batches (``create_batch``/``send_batch``) rather than one ``send`` per
        record is ~3x faster. ``partitions`` is ``partitions_for(topic)``; records go where
        Kafka's default partitioner (murmur2 of the key) puts them, as for any producer
        keyed the same way. Sending stops at the first failure, which is raised.
        """
        producer = self._client()
        errors: list[BaseException] = []

        def settle(error: BaseException | None) -> None:
            if error is not None:
                errors.append(error)

        partition_of: dict[bytes, int] = {}
        open_batches: dict[int, tuple[Any, int]] = {}

        async def submit(partition: int) -> None:
            batch, count = open_batches.pop(partition)
            batch.close()
            await self.wait_for_room()
            if errors:
                raise errors[0]
            entry = _Entry(None, count, settle)
            self._accept(entry)
            self._pending.add(entry)
            try:
                fut = await producer.send_batch(batch, topic, partition=partition)
            except Exception as err:
                self._complete(entry, err)
                raise
            fut.add_done_callback(functools.partial(self._acked, entry))

        for key, value in pairs:
            partition = partition_of.get(key)
            if partition is None:
                partition = partition_of[key] = partitions[partition_for_key(key.decode("utf-8"), len(partitions))]
            entry = open_batches.get(partition)
            if entry is not None and entry[0].append(key=key, value=value, timestamp=None) is not None:
                open_batches[partition] = (entry[0], entry[1] + 1)
                continue
            if entry is not None:
                await submit(partition)  # full: send it and start another
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any record
            open_batches[partition] = (batch, 1)
        for partition in list(open_batches):
            await submit(partition)
        await self.flush()
        if errors:
            raise errors[0]

    # -- internals --------------------------------------------------------------------------

    def _client(self) -> AIOKafkaProducer:
        if not self._running or self._producer is None:
            raise ProducerNotRunning("the producer is not running")
        return self._producer

    def _accept(self, entry: _Entry) -> None:
        self.sent += entry.count
        self._in_flight += entry.count
        self._idle.clear()

    async def _pump(self) -> None:
        """Hand queued records to aiokafka, which batches them (``linger_ms``); one task keeps their order."""
        producer = self._client()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                entry = self._queue.popleft()
                self._pending.add(entry)
                record = entry.record
                assert record is not None
                try:
                    fut = await producer.send(record.topic, record.value, key=record.key, headers=record.headers)
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # noqa: BLE001 - any send error is this record's delivery failure
                    self._complete(entry, err)
                    continue
                fut.add_done_callback(functools.partial(self._acked, entry))

    def _acked(self, entry: _Entry, fut: asyncio.Future[Any]) -> None:
        self._complete(entry, ProducerStopped("delivery was cancelled") if fut.cancelled() else fut.exception())

    def _complete(self, entry: _Entry, error: BaseException | None) -> None:
        if entry.done:
            return
        entry.done = True
        self._pending.discard(entry)
        self._in_flight -= entry.count
        if error is None:
            self.delivered += entry.count
        else:
            self.failed += entry.count
            self.last_error = error
        if entry.on_done is not None:
            try:
                entry.on_done(error)
            except Exception:  # noqa: BLE001 - a faulty callback must not break delivery accounting
                log.exception("delivery callback raised")
        if not self.full:
            self._room.set()
        if not self._in_flight:
            self._idle.set()
