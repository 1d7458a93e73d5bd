"""The daemon's producer: router events and dead letters, with a flush barrier.

Sends are not awaited one by one; their delivery futures are kept until ``flush``,
which the checkpointer calls before writing a checkpoint, so an offset is never
committed ahead of the dead letter or event its record produced.
"""

from __future__ import annotations

import asyncio
import logging
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
        self._pending: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish_event(self, event: RouterEventBase) -> None:
        fut = await self.producer.send(
            self.cfg.kafka.topics.router_events, event_to_bytes(event), key=event.router_id.encode("utf-8"))
        self._pending.append(fut)
        log.info("event published", extra={"event_type": event.type, "router_id": event.router_id,
                                            "event_id": event.event_id})

    async def send_dead_letter(self, *, key: bytes | None, value: bytes | None, reason: str, field: str,
                               source: str) -> None:
        headers = [
            (HEADER_ERROR, reason.replace("\n", " ").encode("utf-8")),
            (HEADER_FIELD, field.encode("utf-8")),
            (HEADER_SOURCE, source.encode("utf-8")),
        ]
        fut = await self.producer.send(self.cfg.kafka.topics.dead_letter, value, key=key, headers=headers)
        self._pending.append(fut)

    async def flush(self) -> None:
        """Wait until every send so far is acknowledged; raises if any failed."""
        pending, self._pending = self._pending, []
        if pending:
            await self.producer.flush()
            await asyncio.gather(*pending)
