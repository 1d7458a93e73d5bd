"""The daemon's producer: router events and dead letters, with a flush barrier.

Sends are not awaited one by one: the shared ``RecordProducer`` queues them and bounds
what is unacknowledged. ``flush``, which the checkpointer calls before writing a
checkpoint, waits for all of them, so an offset is never committed ahead of the dead
letter or event its record produced.
"""

from __future__ import annotations

import functools
import logging
from typing import Final

from memabrad.config import Config
from memabrad.wire.events import RouterEventBase, event_to_bytes
from memabrad.wire.producer import OutRecord, ProducerSettings, RecordProducer

log = logging.getLogger("memabrad.publisher")
HEADER_ERROR = "memabrad-error"
HEADER_FIELD = "memabrad-error-field"
HEADER_SOURCE = "memabrad-source"
MAX_IN_FLIGHT: Final = 1_000
"""Unacknowledged sends before the record loop waits: a flood of dead letters on a slow
broker then holds back consumption rather than growing memory."""


class Publisher:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.producer = RecordProducer(cfg.kafka, ProducerSettings(max_in_flight=MAX_IN_FLIGHT),
                                       name="memabrad-publisher")
        self._failed: list[OutRecord] = []
        self._first_error: BaseException | None = None

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop(timeout=None)

    async def _send(self, record: OutRecord) -> None:
        await self.producer.send(record, functools.partial(self._done, record))

    def _done(self, record: OutRecord, error: BaseException | None) -> None:
        if error is not None:
            self._failed.append(record)
            if self._first_error is None:
                self._first_error = error

    async def publish_event(self, event: RouterEventBase) -> None:
        await self._send(OutRecord(self.cfg.kafka.topics.router_events, event_to_bytes(event),
                                   event.router_id.encode("utf-8")))
        log.info("event published", extra={"event_type": event.type, "router_id": event.router_id,
                                            "event_id": event.event_id})

    async def send_dead_letter(self, *, key: bytes | None, value: bytes | None, reason: str, field: str,
                               source: str) -> None:
        headers = [
            (HEADER_ERROR, reason.replace("\n", " ").encode("utf-8")),
            (HEADER_FIELD, field.encode("utf-8")),
            (HEADER_SOURCE, source.encode("utf-8")),
        ]
        await self._send(OutRecord(self.cfg.kafka.topics.dead_letter, value, key, headers))

    async def flush(self) -> None:
        """Wait until every send so far is acknowledged.

        Failed sends (the broker went away) are kept and re-sent, so a record's dead
        letter or event is never dropped; the error is raised so the caller does not
        commit, and the next ``flush`` waits for the re-sends first.
        """
        await self.producer.flush()
        failed, self._failed = self._failed, []
        if not failed:
            return
        first, self._first_error = self._first_error, None
        log.warning("sends failed; they will be retried", extra={"count": len(failed), "error": repr(first)})
        for record in failed:
            await self._send(record)  # on a stopped producer it fails at once and waits for the next flush
        raise PublishError(f"{len(failed)} send(s) failed: {first!r}")


class PublishError(RuntimeError):
    """Some sends were not acknowledged; they are queued again for the next flush."""
