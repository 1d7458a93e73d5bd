"""Emitting trajectories from an agent: validated, keyed by ``router_id``, batched, never in the caller's way.

``send`` validates on the caller's side (the daemon's own parser, so nothing the daemon
would dead-letter leaves the app) and only appends to an in-memory queue; the shared
``RecordProducer`` (``memabrad.wire.producer``) hands records to aiokafka from one background
task, and aiokafka batches them (``linger_ms``). Records accepted but
not yet acknowledged are bounded (``max_in_flight``): when the broker is slow or gone,
``send`` waits for room (``send_nowait`` raises ``ProducerFull``) instead of growing
memory without limit. A record the broker never acknowledges is counted in ``failed``,
passed to ``on_error`` and makes the next ``flush()`` raise ``DeliveryError``, so losses
are never silent.

``SyncTrajectoryProducer`` runs the same producer on a private event loop in a
background thread, for apps that are not asyncio.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from memabrad.config import Config, KafkaConfig
from memabrad.kafka.topics import ensure_topics
from memabrad.sdk._kafka import as_config, resolve_kafka
from memabrad.sdk._loop import BackgroundLoop
from memabrad.sdk.trajectory import EncodedTrajectory, TrajectoryLike, encode_trajectory
from memabrad.wire.producer import Done, OutRecord, ProducerNotRunning, ProducerSettings, RecordProducer

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
        self.kafka = resolve_kafka(bootstrap_servers, kafka)
        self.topic = topic or self.kafka.topics.trajectories
        self.max_in_flight = max_in_flight
        self.max_bytes = max_bytes if max_bytes is not None else self.kafka.max_message_bytes
        self.on_error = on_error
        self.create_topic = create_topic
        # trajectory_id dedupes on the daemon side, so no idempotent producer is needed.
        self._records = RecordProducer(self.kafka, ProducerSettings(
            linger_ms=linger_ms, max_batch_bytes=max_batch_bytes, request_timeout_ms=request_timeout_ms,
            max_in_flight=max_in_flight, max_record_bytes=self.max_bytes, options=dict(producer_options or {}),
        ), name="memabrad-sdk-producer")
        self._failures: list[DeliveryFailure] = []
        self._failures_since_flush = 0

    @classmethod
    def from_config(cls, cfg: Config, **options: Any) -> TrajectoryProducer:
        """A producer for the daemon's own config (same cluster, security settings and topic name)."""
        return cls(kafka=cfg.kafka, **options)

    def __repr__(self) -> str:
        return (f"TrajectoryProducer({self.kafka.bootstrap_servers!r}, topic={self.topic!r}, sent={self.sent}, "
                f"delivered={self.delivered}, failed={self.failed})")

    @property
    def sent(self) -> int:
        """Records accepted by ``send`` (validated and queued)."""
        return self._records.sent

    @property
    def delivered(self) -> int:
        """Records acknowledged by the broker."""
        return self._records.delivered

    @property
    def failed(self) -> int:
        """Records that will never be acknowledged (see ``on_error`` and ``flush``)."""
        return self._records.failed

    @property
    def last_error(self) -> BaseException | None:
        return self._records.last_error

    @property
    def running(self) -> bool:
        return self._records.running

    @property
    def in_flight(self) -> int:
        """Records accepted but not yet acknowledged (or failed)."""
        return self._records.in_flight

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> Self:
        """Connect (creating the topic when missing and ``create_topic``); raises if the broker is unreachable."""
        if self.running:
            return self
        if self.create_topic:
            await ensure_topics(as_config(self.kafka), names=[self.topic])
        await self._records.start()
        return self

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Deliver what is pending (up to ``timeout`` s), then disconnect.

        Records still undelivered then are reported as failures (``failed``, ``on_error``);
        ``stop`` itself does not raise them: call ``flush`` first for that.
        """
        await self._records.stop(timeout)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            if exc_type is None:
                await self.flush()
        finally:
            await self.stop()

    # -- sending --------------------------------------------------------------------------

    def _check_running(self) -> None:
        if not self.running:
            raise ProducerNotRunning("the producer is not running: call start() (or use `async with`)")

    async def send(self, trajectory: TrajectoryLike) -> str:
        """Validate and queue one trajectory; returns its ``trajectory_id``.

        Raises ``InvalidTrajectory`` (nothing queued) for an event the daemon would refuse.
        Waits (without blocking the loop) only while ``max_in_flight`` records are unacknowledged.
        """
        enc = encode_trajectory(trajectory, max_bytes=self.max_bytes)
        self._check_running()
        await self._records.wait_for_room()
        self._check_running()
        self._submit(enc)
        return enc.trajectory_id

    def send_nowait(self, trajectory: TrajectoryLike) -> str:
        """Like ``send`` but never waits: raises ``ProducerFull`` when ``max_in_flight`` is reached."""
        enc = encode_trajectory(trajectory, max_bytes=self.max_bytes)
        self._check_running()
        if self._records.full:
            raise ProducerFull(f"{self.in_flight} trajectories are waiting for the broker (max_in_flight)")
        self._submit(enc)
        return enc.trajectory_id

    def _submit(self, enc: EncodedTrajectory, on_done: Done | None = None) -> None:
        """Queue an already validated record (on the loop's thread)."""
        self._records.submit(OutRecord(self.topic, enc.value, enc.key), functools.partial(self._done, enc, on_done))

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent so far is acknowledged or failed.

        Raises ``DeliveryError`` when any record failed since the previous ``flush``,
        and ``TimeoutError`` when ``timeout`` seconds pass first.
        """
        await self._records.flush(timeout)
        if self._failures_since_flush:
            failures, count = self._failures, self._failures_since_flush
            self._failures, self._failures_since_flush = [], 0
            raise DeliveryError(failures, count)

    def _done(self, enc: EncodedTrajectory, on_done: Done | None, error: BaseException | None) -> None:
        if error is not None:
            failure = DeliveryFailure(enc.trajectory_id, enc.router_id, error)
            self._failures_since_flush += 1
            if len(self._failures) < MAX_KEPT_FAILURES:
                self._failures.append(failure)
            log.warning("trajectory %s (router %s) was not delivered: %r", failure.trajectory_id,
                        failure.router_id, error)
            if self.on_error is not None:
                try:
                    self.on_error(failure)
                except Exception:  # noqa: BLE001 - a faulty on_error must not keep the record's own callback from running
                    log.exception("on_error callback raised")
        if on_done is not None:
            on_done(error)


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
