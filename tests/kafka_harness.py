"""The one harness of the suites that run a real broker and real daemons (tests/e2e, tests/sdk, tests/deploy).

- ``Topics``: the four topic names of one test (unique, so tests sharing a broker never interfere);
- ``KafkaIO``: Kafka clients on one background asyncio loop, so synchronous tests can produce, read
  topics, poll HTTP endpoints and signal processes with deadlines; ``read_topic``/``publish`` are the
  same reads and writes for tests that run on their own asyncio loop;
- ``DaemonProcess``/``DaemonFactory``: ``python -m memabrad run`` configured by environment, its output
  in a log file that ``fixtures_kafka`` attaches to the report of a failed test;
- ``Metrics``: one ``/metrics`` scrape.

The fixtures built on these (broker, kafka, daemons, producer) are in ``fixtures_kafka.py``.
Nothing here sleeps to synchronise: every wait is ``polling.wait_until`` (or ``until``) with a deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cli_helpers import clean_environ
from polling import wait_until
from prometheus_client.parser import text_string_to_metric_families

from memabrad.config import Config, config_from_dict
from memabrad.kafka.embedded import free_port
from memabrad.kafka.topics import ensure_topics

T = TypeVar("T")
R = TypeVar("R", bound="TopicReader")
READY_TIMEOUT_S = 90.0
LOG_TAIL_CHARS = 20_000

# Gates that pass whatever the data: for tests that need promotions, not judgement.
ALWAYS_PROMOTE = {"MEMABRAD_PROMOTION__MODE": "point", "MEMABRAD_PROMOTION__MIN_REWARD_DELTA": "-1",
                  "MEMABRAD_PROMOTION__MAX_ERROR_RATE_INCREASE": "1",
                  "MEMABRAD_PROMOTION__MAX_LATENCY_INCREASE_MS": "1000000",
                  "MEMABRAD_PROMOTION__REQUIRED_TASK_COUNT": "0"}
PROMOTE_EVERY = 300
"""Trajectories per evaluation of the SDK tests' daemon (with ``ALWAYS_PROMOTE``, one promotion each)."""


# -- topics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    """The four topic names of one test's daemons."""

    trajectories: str
    router_events: str
    admin: str
    dead_letter: str

    @classmethod
    def unique(cls, label: str, suite: str = "e2e") -> Topics:
        """Names of this test's own (``suite`` and ``label`` make them readable in a broker log)."""
        tag = f"{suite}.{label}.{uuid.uuid4().hex[:8]}"
        return cls(f"{tag}.trajectories", f"{tag}.router.events", f"{tag}.admin", f"{tag}.dlq")

    @classmethod
    def default(cls) -> Topics:
        """The contract's names, as a deployment without overrides uses them."""
        return cls(**Config().kafka.topics.model_dump())

    def as_config(self) -> dict[str, str]:
        return {"trajectories": self.trajectories, "router_events": self.router_events, "admin": self.admin,
                "dead_letter": self.dead_letter}

    def env(self) -> dict[str, str]:
        """The ``MEMABRAD_*`` variables naming these topics."""
        return {f"MEMABRAD_KAFKA__TOPICS__{k.upper()}": v for k, v in self.as_config().items()}

    def config(self, bootstrap_servers: str) -> Config:
        """A config naming the broker and these topics (for ensure_topics and checkpoint reads)."""
        return config_from_dict({"kafka": {"bootstrap_servers": bootstrap_servers, "topics": self.as_config()}})


# -- Kafka I/O on a background loop ----------------------------------------------------------


class KafkaIO:
    """One asyncio loop in a daemon thread that owns every Kafka client of a test module."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="kafka-io", daemon=True)
        self._thread.start()
        self._readers: list[TopicReader] = []

    def __enter__(self) -> KafkaIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return self.submit(coro).result(timeout)

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def config(self, topics: Topics) -> Config:
        """A config naming this broker and ``topics`` (for ensure_topics and checkpoint reads)."""
        return topics.config(self.bootstrap_servers)

    def create_topics(self, topics: Topics, trajectory_partitions: int = 1) -> None:
        """Pre-create all four topics so no client auto-creates one with the broker's own count."""
        self.run(ensure_topics(self.config(topics), partitions={"trajectories": trajectory_partitions}))

    def producer(self) -> Producer:
        return Producer(self)

    def reader(self, topic: str, partitions: int = 1) -> TopicReader:
        return self._track(TopicReader(self, topic, partitions).start())

    def events(self, topic: str, partitions: int = 1) -> EventReader:
        """Router events of ``topic`` from its beginning."""
        return self._track(EventReader(self, topic, partitions).start())

    def dead_letters(self, topic: str, partitions: int = 1) -> DeadLetterReader:
        return self._track(DeadLetterReader(self, topic, partitions).start())

    def _track(self, reader: R) -> R:
        self._readers.append(reader)
        return reader

    def committed(self, group_id: str, topic: str, partition: int) -> int | None:
        """The group's committed offset of one partition (a consumer of the group, never joining it)."""

        async def go() -> int | None:
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, group_id=group_id,
                                 enable_auto_commit=False)
            await c.start()
            try:
                tp = TopicPartition(topic, partition)
                c.assign([tp])
                return await c.committed(tp)
            finally:
                await c.stop()

        return self.run(go(), 60)

    def commit(self, group_id: str, topic: str, offsets: dict[int, int]) -> None:
        """Commit offsets for a group without joining it (test setup)."""

        async def go() -> None:
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, group_id=group_id,
                                 enable_auto_commit=False)
            await c.start()
            try:
                tps = {TopicPartition(topic, p): o for p, o in offsets.items()}
                c.assign(list(tps))
                await c.commit(tps)
            finally:
                await c.stop()

        self.run(go(), 60)


@dataclass(frozen=True)
class Sent:
    """Where a produced record landed."""

    partition: int
    offset: int


def trajectory_bytes(row: dict[str, Any]) -> bytes:
    return json.dumps(row, separators=(",", ":")).encode("utf-8")


class Producer:
    """aiokafka producer (no idempotence: the embedded broker lacks it), keyed by router id."""

    def __init__(self, io: KafkaIO, max_request_size: int = 3 * 1024 * 1024) -> None:
        self.io = io
        self._producer: AIOKafkaProducer | None = None

        async def start() -> AIOKafkaProducer:
            p = AIOKafkaProducer(bootstrap_servers=io.bootstrap_servers, enable_idempotence=False, acks="all",
                                 linger_ms=5, max_request_size=max_request_size)
            await p.start()
            return p

        self._producer = io.run(start(), 60)

    async def _send(self, topic: str, items: Sequence[tuple[bytes | None, bytes | None]]) -> list[Sent]:
        assert self._producer is not None
        futs = [await self._producer.send(topic, value, key=key) for key, value in items]
        done = await asyncio.gather(*futs)
        return [Sent(md.partition, md.offset) for md in done]

    def send(self, topic: str, items: Sequence[tuple[bytes | None, bytes | None]],
             timeout: float = 180.0) -> list[Sent]:
        """Send ``(key, value)`` pairs in order and wait for every acknowledgement."""
        return self.io.run(self._send(topic, items), timeout)

    def send_trajectories(self, topic: str, rows: Sequence[dict[str, Any]], timeout: float = 180.0) -> list[Sent]:
        return self.send(topic, [(r["router_id"].encode(), trajectory_bytes(r)) for r in rows], timeout)

    def send_json(self, topic: str, obj: dict[str, Any], key: str) -> Sent:
        return self.send(topic, [(key.encode(), json.dumps(obj).encode())])[0]

    def stream_trajectories(self, topic: str, rows: Sequence[dict[str, Any]], chunk: int = 500,
                            pause_s: float = 0.05) -> concurrent.futures.Future[int]:
        """Send ``rows`` in the background, chunk by chunk; the future gives the number sent."""

        async def go() -> int:
            for i in range(0, len(rows), chunk):
                part = rows[i:i + chunk]
                await self._send(topic, [(r["router_id"].encode(), trajectory_bytes(r)) for r in part])
                await asyncio.sleep(pause_s)
            return len(rows)

        return self.io.submit(go())

    def close(self) -> None:
        if self._producer is not None:
            self.io.run(self._producer.stop(), 30)
            self._producer = None


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


class TopicReader:
    """Reads a topic from its beginning (no group, all partitions assigned) into memory, continuously."""

    def __init__(self, io: KafkaIO, topic: str, partitions: int) -> None:
        self.io = io
        self.topic = topic
        self.partitions = partitions
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: concurrent.futures.Future[None] | None = None
        self._stop = False

    def start(self) -> Self:
        async def start() -> AIOKafkaConsumer:
            c = AIOKafkaConsumer(bootstrap_servers=self.io.bootstrap_servers, group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
            await c.start()
            tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            return c

        self._consumer = self.io.run(start(), 60)
        self._task = self.io.submit(self._pump())
        return self

    async def _pump(self) -> None:
        assert self._consumer is not None
        while not self._stop:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            fresh = [Record(m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers or ()))
                     for msgs in batch.values() for m in msgs]
            if fresh:
                with self._lock:
                    self._records.extend(fresh)

    def records(self) -> list[Record]:
        """Everything read so far, in arrival order (raises if the reading task died)."""
        if self._task is not None and self._task.done() and not self._stop:
            self._task.result()
        with self._lock:
            return list(self._records)

    def wait_for(self, predicate: Callable[[list[Record]], T], timeout: float, what: str) -> T:
        return wait_until(lambda: predicate(self.records()), timeout, what)

    def close(self) -> None:
        self._stop = True
        if self._task is not None:
            with contextlib.suppress(Exception):  # closing anyway
                self._task.result(10)
        if self._consumer is not None:
            self.io.run(self._consumer.stop(), 30)
            self._consumer = None


class EventReader(TopicReader):
    """Router events, parsed, de-duplicated by ``event_id`` (a crash may re-publish one)."""

    def events(self) -> list[dict[str, Any]]:
        seen: set[str] = set()
        out = []
        for r in self.records():
            assert r.value is not None
            ev = json.loads(r.value)
            if ev["event_id"] in seen:
                continue
            seen.add(ev["event_id"])
            out.append(ev)
        return out

    def wait_events(self, predicate: Callable[[list[dict[str, Any]]], T], timeout: float, what: str) -> T:
        return wait_until(lambda: predicate(self.events()), timeout, what)

    def answers(self, request_id: str) -> list[dict[str, Any]]:
        """Admin answers (applied, rolled back or rejected) carrying ``request_id``."""
        kinds = ("admin.applied", "admin.rejected", "router.rolled_back")
        return [e for e in self.events() if e["type"] in kinds and e.get("request_id") == request_id]

    def wait_answer(self, request_id: str, timeout: float = 30.0) -> dict[str, Any]:
        return wait_until(lambda: (self.answers(request_id) or [None])[0], timeout, f"answer to {request_id}")


EVALUATION_TYPES = ("router.promoted", "router.rejected", "router.evaluated")


def evaluation_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] in EVALUATION_TYPES]


class DeadLetterReader(TopicReader):
    """The dead-letter topic, with headers."""

    def dead_letters(self) -> list[tuple[bytes | None, bytes | None, dict[str, bytes]]]:
        """(key, value, headers) of every dead letter so far."""
        return [(r.key, r.value, dict(r.headers)) for r in self.records()]


# -- reads and writes from a test's own asyncio loop ------------------------------------------


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


# -- metrics ----------------------------------------------------------------------------------


class Metrics:
    """Samples of one ``/metrics`` scrape, looked up by sample name and a subset of labels."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (s.name, dict(s.labels), s.value) for fam in text_string_to_metric_families(text) for s in fam.samples]

    def find(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [(lab, v) for n, lab, v in self.samples
                if n == name and all(lab.get(k) == want for k, want in labels.items())]

    def sum(self, name: str, **labels: str) -> float:
        return sum(v for _, v in self.find(name, **labels))

    def value(self, name: str, **labels: str) -> float | None:
        """The one matching sample's value, None when absent (AssertionError when ambiguous)."""
        found = self.find(name, **labels)
        assert len(found) <= 1, f"{name}{labels} matches several samples: {found}"
        return found[0][1] if found else None


# -- daemon processes -------------------------------------------------------------------------


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class DaemonProcess:
    """``python -m memabrad run`` configured by environment, its stderr/stdout in a log file."""

    def __init__(self, name: str, bootstrap_servers: str, base_dir: Path, topics: Topics, group_id: str,
                 log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.bootstrap_servers = bootstrap_servers
        self.base_dir = base_dir
        self.topics = topics
        self.group_id = group_id
        self.log_dir = log_dir
        self.extra_env = dict(env or {})
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.log_paths: list[Path] = []
        self.starts = 0

    def environment(self) -> dict[str, str]:
        env = clean_environ()
        env.update({
            "PYTHONUNBUFFERED": "1",
            "MEMABRAD_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "MEMABRAD_KAFKA__GROUP_ID": self.group_id,
            "MEMABRAD_STORE__BASE_DIR": str(self.base_dir),
            "MEMABRAD_HTTP__HOST": "127.0.0.1",
            "MEMABRAD_HTTP__PORT": str(self.port),
            "MEMABRAD_LOGGING__FORMAT": "text",
            "MEMABRAD_CHECKPOINT__INTERVAL_S": "1",
            # The embedded broker keeps a stopped member until its session expires: restarts wait that long.
            "MEMABRAD_KAFKA__SESSION_TIMEOUT_MS": "6000",
            "MEMABRAD_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
            **self.topics.env(),
        })
        env.update(self.extra_env)
        return env

    def start(self) -> DaemonProcess:
        """Start a fresh process (a restart after an exit reuses the base dir and group, new port and log)."""
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        self.port = free_port()
        self.log_path = self.log_dir / f"{self.name}.{self.starts}.log"
        self.log_paths.append(self.log_path)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "memabrad", "run"], env=self.environment(),
                                         cwd=self.log_dir, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _fail_if_dead(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with code {self.proc.returncode}:\n{self.log_tail()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def http_get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        return http_get(f"{self.url}{path}", timeout)

    def is_ready(self) -> bool:
        self._fail_if_dead()
        try:
            return self.http_get("/readyz", timeout=2.0)[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> DaemonProcess:
        wait_until(self.is_ready, timeout, f"{self.name} /readyz")
        return self

    def get_json(self, path: str = "/status") -> dict[str, Any]:
        self._fail_if_dead()
        status, body = self.http_get(path)
        assert status == 200, f"GET {path} -> {status}: {body[:200]!r}"
        return json.loads(body)

    def status(self) -> dict[str, Any]:
        return self.get_json("/status")

    def router(self, router_id: str = "default") -> dict[str, Any] | None:
        return self.status()["routers"].get(router_id)

    def metrics(self) -> Metrics:
        self._fail_if_dead()
        status, body = self.http_get("/metrics")
        assert status == 200, f"GET /metrics -> {status}"
        return Metrics(body.decode("utf-8"))

    def wait_status(self, predicate: Callable[[dict[str, Any]], T], timeout: float, what: str) -> T:
        """Poll ``/status`` until ``predicate(status)`` is truthy (a refused connection counts as not yet)."""

        def probe() -> T | None:
            self._fail_if_dead()
            try:
                return predicate(self.status())
            except OSError:
                return None

        return wait_until(probe, timeout, f"{self.name}: {what}", interval=0.25)

    def wait_consumed(self, offsets: dict[int, int], timeout: float) -> dict[str, Any]:
        """Until every listed partition's next_offset reaches the given offset and no evaluation is pending."""

        def done(s: dict[str, Any]) -> dict[str, Any] | None:
            parts = s["partitions"]
            ok = all(str(p) in parts and (parts[str(p)]["next_offset"] or 0) >= n for p, n in offsets.items())
            return s if ok and s["evaluations_pending"] == 0 else None

        return self.wait_status(done, timeout, f"partitions consumed up to {offsets}")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait_exit(30)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        self.terminate()
        return self.wait_exit(timeout)

    def ensure_dead(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(30)

    def shutdown(self, timeout: float = 15.0) -> None:
        """Graceful stop if still running, a kill if that takes longer than ``timeout``."""
        if self.alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop(timeout)
        self.ensure_dead()

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        parts = []
        for path in self.log_paths:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as err:
                text = f"<cannot read: {err}>"
            parts.append(f"----- {path.name} -----\n{text[-chars:]}")
        return "\n".join(parts)


@dataclass
class DaemonFactory:
    """Creates daemons for one test; all of them are killed at teardown."""

    io: KafkaIO
    tmp_path: Path
    daemons: list[DaemonProcess] = field(default_factory=list)

    def new(self, name: str, topics: Topics, *, base_dir: Path | None = None, group_id: str | None = None,
            env: dict[str, str] | None = None, start: bool = True) -> DaemonProcess:
        """A daemon on ``topics``; a fresh base dir and group unless given."""
        group = group_id or f"e2e-{name}-{uuid.uuid4().hex[:8]}"
        d = DaemonProcess(name, self.io.bootstrap_servers, base_dir or self.tmp_path / f"{name}-base", topics,
                          group, self.tmp_path, env)
        self.daemons.append(d)
        return d.start() if start else d

    def logs(self) -> str:
        return "\n".join(d.log_tail() for d in self.daemons)

    def kill_all(self) -> None:
        for d in self.daemons:
            d.ensure_dead()
