"""Helpers of the SDK tests: the test daemon's description, polling, and small Kafka reads and writes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

T = TypeVar("T")
MIN_NEW = 300
"""Trajectories per evaluation (and so per promotion) of the test daemon."""
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Topics:
    trajectories: str
    router_events: str
    admin: str
    dead_letter: str

    @classmethod
    def unique(cls, label: str) -> Topics:
        tag = f"sdk.{label}.{uuid.uuid4().hex[:8]}"
        return cls(f"{tag}.trajectories", f"{tag}.router.events", f"{tag}.admin", f"{tag}.dlq")

    def as_config(self) -> dict[str, str]:
        return {"trajectories": self.trajectories, "router_events": self.router_events, "admin": self.admin,
                "dead_letter": self.dead_letter}


@dataclass
class Daemon:
    """A running ``python -m memabrad run`` and where it keeps things."""

    proc: subprocess.Popen[bytes]
    bootstrap_servers: str
    base_dir: Path
    topics: Topics
    port: int
    log_path: Path

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=5) as resp:
            return json.loads(resp.read())

    def log_tail(self, chars: int = 8000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError as err:
            return f"<cannot read {self.log_path}: {err}>"


def daemon_ready(daemon: Daemon) -> bool:
    if daemon.proc.poll() is not None:
        raise AssertionError(f"the daemon exited with code {daemon.proc.returncode}:\n{daemon.log_tail()}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/readyz", timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


async def read_topic(bootstrap_servers: str, topic: str, count: int, timeout: float = 20.0) -> list[Any]:
    """The first ``count`` records of partition 0 of ``topic`` (fails after ``timeout`` s)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < count:
            remaining = deadline - loop.time()
            assert remaining > 0, f"only {len(records)} of {count} records in {topic} after {timeout:g}s"
            batch = await consumer.getmany(tp, timeout_ms=int(min(remaining, 0.5) * 1000))
            records.extend(batch.get(tp, []))
        return records
    finally:
        await consumer.stop()


async def publish(bootstrap_servers: str, topic: str, key: str, value: bytes) -> None:
    """One record, acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode("utf-8"))
    finally:
        await producer.stop()
