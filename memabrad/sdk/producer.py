"""Emitting trajectories from an agent: validated, keyed by ``router_id``, batched, never in the caller's way.

``send`` validates on the caller's side (the daemon's own parser, so nothing the daemon
would dead-letter leaves the app) and only appends to an in-memory queue; one background
task hands records to aiokafka, which batches them (``linger_ms``). Records accepted but
not yet acknowledged are bounded (``max_in_flight``): when the broker is slow or gone,
``send`` waits for room (``send_nowait`` raises ``ProducerFull``) instead of growing
memory without limit. A record the broker never acknowledges is counted in ``failed``,
passed to ``on_error`` and makes the next ``flush()`` raise ``DeliveryError``, so losses
are never silent.

``SyncTrajectoryProducer`` runs the same producer on a private event loop in a
background thread, for apps that are not asyncio.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiokafka import AIOKafkaProducer

from memabrad.config import Config, KafkaConfig
from memabrad.kafka.client import client_kwargs
from memabrad.kafka.topics import ensure_topics
from memabrad.sdk._kafka import as_config, resolve_kafka
from memabrad.sdk._loop import BackgroundLoop
from memabrad.sdk.trajectory import EncodedTrajectory, TrajectoryLike, encode_trajectory

__all__ = [
    "DeliveryError",
    "DeliveryFailure",
    "ProducerFull",
    "ProducerNotRunning",
    "SyncTrajectoryProducer",
    "TrajectoryProducer",
]

log = logging.getLogger("memabrad.sdk.producer")

MAX_KEPT_FAILURES = 1000
"""Failures remembered between two ``flush`` calls (all are counted; only these are listed)."""


class ProducerFull(Exception):
    """``max_in_flight`` records are waiting for acknowledgement; back off or drop."""


class ProducerNotRunning(RuntimeError):
    """``send`` before ``start`` or after ``stop``."""


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """A trajectory that was accepted by ``send`` but never acknowledged by the broker."""

    trajectory_id: str
    router_id: str
    error: BaseException


class DeliveryError(Exception):
    """Raised by ``flush``: some trajectories sent since the previous flush were not delivered."""

    def __init__(self, failures: list[DeliveryFailure], count: int) -> None:
        self.failures = failures
        self.count = count
        first = failures[0] if failures else None
        detail = f"; first: {first.trajectory_id}: {first.error!r}" if first else ""
        super().__init__(f"{count} trajector{'y' if count == 1 else 'ies'} not delivered{detail}")


class _Stopped(Exception):
    """Placeholder error for records still pending when the producer stopped."""


@dataclass(eq=False, slots=True)
class _Item:
    enc: EncodedTrajectory
    on_done: Callable[[BaseException | None], None] | None = None
    done: bool = field(default=False)


class TrajectoryProducer:
    """Async producer of trajectory events (aiokafka), for agents running on asyncio.

    Use as ``async with TrajectoryProducer("broker:9092") as producer: await producer.send(t)``;
    leaving the block flushes (raising ``DeliveryError`` on losses) and stops.

    ``on_error`` is called on the event loop, once per undelivered record; it must not block.
    ``create_topic`` creates a missing topic with one partition: handy locally, but in
    production the operator creates the topics with their partition count (docs/deploying.md).
    """

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        *,
        kafka: KafkaConfig | None = None,
        topic: str | None = None,
        linger_ms: int = 20,
        max_batch_bytes: int = 256 * 1024,
        max_in_flight: int = 10_000,
        request_timeout_ms: int = 10_000,
        on_error: Callable[[DeliveryFailure], None] | None = None,
        create_topic: bool = False,
        max_bytes: int | None = None,
        producer_options: Mapping[str, Any] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self.kafka = resolve_kafka(bootstrap_servers, kafka)
        self.topic = topic or self.kafka.topics.trajectories
        self.max_in_flight = max_in_flight
        self.max_bytes = max_bytes if max_bytes is not None else self.kafka.max_message_bytes
        self.on_error = on_error
        self.create_topic = create_topic
        self._producer_kwargs: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": False,  # the embedded broker lacks it; trajectory_id dedupes on the daemon side
            "linger_ms": linger_ms,
            "max_batch_size": max_batch_bytes,
            "request_timeout_ms": request_timeout_ms,
            "max_request_size": max(self.max_bytes * 2, 2_097_152),
            **dict(producer_options or {}),
        }
        self.sent = 0
        """Records accepted by ``send`` (validated and queued)."""
        self.delivered = 0
        """Records acknowledged by the broker."""
        self.failed = 0
        """Records that will never be acknowledged (see ``on_error`` and ``flush``)."""
        self.last_error: BaseException | None = None
        self._producer: AIOKafkaProducer | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._queue: collections.deque[_Item] = collections.deque()
        self._pending: set[_Item] = set()
        self._failures: list[DeliveryFailure] = []
        self._failures_since_flush = 0
        self._wake: asyncio.Event | None = None
        self._room: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._running = False

    @classmethod
    def from_config(cls, cfg: Config, **options: Any) -> TrajectoryProducer:
        """A producer for the daemon's own config (same cluster, security settings and topic name)."""
        return cls(kafka=cfg.kafka, **options)

    def __repr__(self) -> str:
        return (f"TrajectoryProducer({self.kafka.bootstrap_servers!r}, topic={self.topic!r}, sent={self.sent}, "
                f"delivered={self.delivered}, failed={self.failed})")

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> Self:
        """Connect (creating the topic when missing and ``create_topic``); raises if the broker is unreachable."""
        if self._running:
            return self
        if self.create_topic:
            await ensure_topics(as_config(self.kafka), names=[self.topic])
        producer = AIOKafkaProducer(**client_kwargs(self.kafka), **self._producer_kwargs)
        await producer.start()
        self._producer = producer
        self._wake, self._room, self._idle = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._room.set()
        self._idle.set()
        self._running = True
        self._pump_task = asyncio.create_task(self._pump(), name="memabrad-sdk-producer")
        return self

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Deliver what is pending (up to ``timeout`` s), then disconnect.

        Records still undelivered then are reported as failures (``failed``, ``on_error``);
        ``stop`` itself does not raise them: call ``flush`` first for that.
        """
        if not self._running:
            return
        self._running = False
        assert self._idle is not None and self._wake is not None
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
            self._pump_task = None
        if self._producer is not None:
            with contextlib.suppress(Exception):  # best effort: a dead broker must not hang the app's shutdown
                await asyncio.wait_for(self._producer.stop(), timeout)
            self._producer = None
        for item in [*self._queue, *self._pending]:
            self._finish(item, _Stopped("producer stopped before the broker acknowledged the record"))
        self._queue.clear()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            if exc_type is None:
                await self.flush()
        finally:
            await self.stop()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def in_flight(self) -> int:
        """Records accepted but not yet acknowledged (or failed)."""
        return len(self._queue) + len(self._pending)

    # -- sending --------------------------------------------------------------------------

    def _check_running(self) -> None:
        if not self._running:
            raise ProducerNotRunning("the producer is not running: call start() (or use `async with`)")

    async def send(self, trajectory: TrajectoryLike) -> str:
        """Validate and queue one trajectory; returns its ``trajectory_id``.

        Raises ``InvalidTrajectory`` (nothing queued) for an event the daemon would refuse.
        Waits (without blocking the loop) only while ``max_in_flight`` records are unacknowledged.
        """
        enc = encode_trajectory(trajectory, max_bytes=self.max_bytes)
        self._check_running()
        while self.in_flight >= self.max_in_flight:
            assert self._room is not None
            self._room.clear()
            await self._room.wait()
            self._check_running()
        self._submit(enc)
        return enc.trajectory_id

    def send_nowait(self, trajectory: TrajectoryLike) -> str:
        """Like ``send`` but never waits: raises ``ProducerFull`` when ``max_in_flight`` is reached."""
        enc = encode_trajectory(trajectory, max_bytes=self.max_bytes)
        self._check_running()
        if self.in_flight >= self.max_in_flight:
            raise ProducerFull(f"{self.in_flight} trajectories are waiting for the broker (max_in_flight)")
        self._submit(enc)
        return enc.trajectory_id

    def _submit(self, enc: EncodedTrajectory, on_done: Callable[[BaseException | None], None] | None = None) -> None:
        """Queue an already validated record (on the loop's thread)."""
        item = _Item(enc, on_done)
        if not self._running:
            self.sent += 1
            self._finish(item, ProducerNotRunning("the producer is not running"))
            return
        assert self._wake is not None and self._idle is not None
        self.sent += 1
        self._queue.append(item)
        self._idle.clear()
        self._wake.set()

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent so far is acknowledged or failed.

        Raises ``DeliveryError`` when any record failed since the previous ``flush``,
        and ``TimeoutError`` when ``timeout`` seconds pass first.
        """
        if self._idle is not None and self.in_flight:
            assert self._wake is not None
            self._wake.set()
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._failures_since_flush:
            failures, count = self._failures, self._failures_since_flush
            self._failures, self._failures_since_flush = [], 0
            raise DeliveryError(failures, count)

    # -- background -----------------------------------------------------------------------

    async def _pump(self) -> None:
        """Move queued records into aiokafka's batches; one task, so records keep their order."""
        assert self._wake is not None and self._producer is not None
        producer = self._producer
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                item = self._queue.popleft()
                self._pending.add(item)
                try:
                    fut = await producer.send(self.topic, item.enc.value, key=item.enc.key)
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # noqa: BLE001 - any send error is this record's delivery failure
                    self._finish(item, err)
                    continue
                fut.add_done_callback(functools.partial(self._on_ack, item))

    def _on_ack(self, item: _Item, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self._finish(item, _Stopped("delivery was cancelled"))
        else:
            self._finish(item, fut.exception())

    def _finish(self, item: _Item, error: BaseException | None) -> None:
        if item.done:
            return
        item.done = True
        self._pending.discard(item)
        if error is None:
            self.delivered += 1
        else:
            self.failed += 1
            self.last_error = error
            failure = DeliveryFailure(item.enc.trajectory_id, item.enc.router_id, error)
            self._failures_since_flush += 1
            if len(self._failures) < MAX_KEPT_FAILURES:
                self._failures.append(failure)
            log.warning("trajectory %s (router %s) was not delivered: %r", failure.trajectory_id,
                        failure.router_id, error)
            if self.on_error is not None:
                try:
                    self.on_error(failure)
                except Exception:  # noqa: BLE001 - a faulty callback must not break delivery accounting
                    log.exception("on_error callback raised")
        if item.on_done is not None:
            try:
                item.on_done(error)
            except Exception:  # noqa: BLE001
                log.exception("delivery callback raised")
        if self._room is not None and self.in_flight < self.max_in_flight:
            self._room.set()
        if self._idle is not None and not self.in_flight:
            self._idle.set()


class SyncTrajectoryProducer:
    """``TrajectoryProducer`` for code without an event loop: a background thread runs one.

    ``send`` validates in the calling thread (raising ``InvalidTrajectory`` there) and
    returns at once; it blocks only while ``max_in_flight`` records are unacknowledged
    (``ProducerFull`` after ``timeout``). ``on_error`` is called in the background thread.
    Use as ``with SyncTrajectoryProducer("broker:9092") as producer: producer.send(t)``.
    """

    def __init__(self, bootstrap_servers: str | None = None, *, start_timeout: float = 30.0, **options: Any) -> None:
        self._producer = TrajectoryProducer(bootstrap_servers, **options)
        self.start_timeout = start_timeout
        self._slots = threading.BoundedSemaphore(self._producer.max_in_flight)
        self._loop = BackgroundLoop("memabrad-sdk-producer")
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Config, **options: Any) -> SyncTrajectoryProducer:
        """A producer for the daemon's own config (same cluster, security settings and topic name)."""
        return cls(kafka=cfg.kafka, **options)

    def __repr__(self) -> str:
        return f"Sync{self._producer!r}"

    @property
    def topic(self) -> str:
        return self._producer.topic

    @property
    def sent(self) -> int:
        return self._producer.sent

    @property
    def delivered(self) -> int:
        return self._producer.delivered

    @property
    def failed(self) -> int:
        return self._producer.failed

    @property
    def in_flight(self) -> int:
        return self._producer.in_flight

    @property
    def last_error(self) -> BaseException | None:
        return self._producer.last_error

    @property
    def running(self) -> bool:
        return self._loop.running and self._producer.running

    def start(self) -> Self:
        """Start the background loop and connect; raises what ``TrajectoryProducer.start`` raises."""
        with self._lock:
            if self._loop.running:
                return self
            self._loop.start()
            try:
                self._loop.run(self._producer.start(), self.start_timeout)
            except BaseException:
                self._loop.stop()
                raise
            return self

    def send(self, trajectory: TrajectoryLike, timeout: float | None = None) -> str:
        """Validate and queue one trajectory; returns its ``trajectory_id``."""
        enc = encode_trajectory(trajectory, max_bytes=self._producer.max_bytes)
        if not self.running:
            raise ProducerNotRunning("the producer is not running: call start() (or use `with`)")
        if not self._slots.acquire(timeout=timeout):
            raise ProducerFull(f"{self._producer.max_in_flight} trajectories are waiting for the broker")
        try:
            self._loop.call_soon(self._producer._submit, enc, self._release)
        except RuntimeError:  # the loop stopped meanwhile
            self._slots.release()
            raise ProducerNotRunning("the producer stopped") from None
        return enc.trajectory_id

    def _release(self, _error: BaseException | None) -> None:
        self._slots.release()

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every record sent so far; raises ``DeliveryError`` / ``TimeoutError`` like the async one."""
        if self._loop.running:
            self._loop.run(self._producer.flush(timeout))

    def close(self, timeout: float | None = 30.0) -> None:
        """Deliver what is pending (up to ``timeout`` s), disconnect and end the thread."""
        with self._lock:
            if not self._loop.running:
                return
            try:
                self._loop.run(self._producer.stop(timeout), None if timeout is None else timeout + 15.0)
            finally:
                self._loop.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()
