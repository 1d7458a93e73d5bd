"""The daemon's producer: router events and dead letters, with a flush barrier.

Sends are not awaited one by one; their delivery futures are kept until ``flush``,
which the checkpointer calls before writing a checkpoint, so an offset is never
committed ahead of the dead letter or event its record produced.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from memabrad.config import Config
from memabrad.kafka.client import client_kwargs
from memabrad.wire.events import RouterEventBase, event_to_bytes

log = logging.getLogger("memabrad.publisher")
HEADER_ERROR = "memabrad-error"
HEADER_FIELD = "memabrad-error-field"
HEADER_SOURCE = "memabrad-source"


class Publisher:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.producer = AIOKafkaProducer(
            **client_kwargs(cfg.kafka), acks="all", linger_ms=5, enable_idempotence=False,
            max_request_size=max(cfg.kafka.max_message_bytes * 2, 2_097_152),
        )
        self._pending: list[tuple[asyncio.Future[Any], _Record]] = []

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def _send(self, record: _Record) -> None:
        fut = await self.producer.send(record.topic, record.value, key=record.key, headers=record.headers)
        self._pending.append((fut, record))

    async def publish_event(self, event: RouterEventBase) -> None:
        await self._send(_Record(self.cfg.kafka.topics.router_events, event.router_id.encode("utf-8"),
                                 event_to_bytes(event), None))
        log.info("event published", extra={"event_type": event.type, "router_id": event.router_id,
                                            "event_id": event.event_id})

    async def send_dead_letter(self, *, key: bytes | None, value: bytes | None, reason: str, field: str,
                               source: str) -> None:
        headers = [
            (HEADER_ERROR, reason.replace("\n", " ").encode("utf-8")),
            (HEADER_FIELD, field.encode("utf-8")),
            (HEADER_SOURCE, source.encode("utf-8")),
        ]
        await self._send(_Record(self.cfg.kafka.topics.dead_letter, key, value, headers))

    async def flush(self) -> None:
        """Wait until every send so far is acknowledged.

        Failed sends (the broker went away) are kept and re-sent, so a record's dead
        letter or event is never dropped; the error is raised so the caller does not
        commit, and the next ``flush`` retries them first.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        await self.producer.flush()
        results = await asyncio.gather(*(f for f, _ in pending), return_exceptions=True)
        failed = [rec for (_, rec), res in zip(pending, results, strict=True) if isinstance(res, BaseException)]
        if failed:
            first = next(r for r in results if isinstance(r, BaseException))
            log.warning("sends failed; they will be retried", extra={"count": len(failed), "error": repr(first)})
            for rec in failed:
                try:
                    await self._send(rec)
                except Exception:  # noqa: BLE001 - keep it for the next flush
                    self._pending.append((_failed_future(), rec))
            raise PublishError(f"{len(failed)} send(s) failed: {first!r}")


class PublishError(RuntimeError):
    """Some sends were not acknowledged; they are queued again for the next flush."""


@dataclass(frozen=True)
class _Record:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None


def _failed_future() -> asyncio.Future[Any]:
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    fut.set_exception(ConnectionError("not sent yet"))
    return fut
