"""Streaming commands: ``produce`` (trajectory files -> Kafka) and ``admin`` (signed operator commands).

Both talk to a broker, so every network step is bounded in time: an unreachable broker
is reported ("cannot reach Kafka at ...", exit 1) within seconds instead of hanging.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import re
import socket
import sys
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)

from memabrad.cli.commands_store import load_cli_config
from memabrad.cli.errors import CliError, UsageError
from memabrad.config import Config, ConfigError
from memabrad.kafka.client import client_kwargs, partition_for_key
from memabrad.kafka.topics import ensure_topics, topic_partitions
from memabrad.wire import (
    InvalidAdminCommand,
    InvalidMessage,
    InvalidTrajectory,
    parse_admin_command,
    parse_trajectory,
    sign_command,
)
from memabrad.wire.parse import parse_json_object

__all__ = ["ADMIN_SUBCOMMANDS", "build_admin_command", "read_records", "register"]

T = TypeVar("T")

CONNECT_TIMEOUT_S: Final = 15.0
"""Upper bound for each connect / metadata / single-send step."""
REQUEST_TIMEOUT_MS: Final = 10_000
BATCH_BYTES: Final = 512 * 1024
"""Large batches: per-batch overhead, not bytes, bounds the producer's rate (16 KiB batches halve it)."""
MAX_IN_FLIGHT: Final = 10_000
"""Records handed to the producer but not yet acknowledged; bounds memory on huge files."""
MAX_REPORTED: Final = 100
"""Invalid records printed one per line before summarising the rest."""
ANSWER_TYPES: Final = frozenset({"admin.applied", "admin.rejected", "router.rolled_back"})
_UNREACHABLE: Final = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError, TimeoutError,
                       ConnectionError)

ADMIN_SUBCOMMANDS: Final[tuple[tuple[str, str, bool, str], ...]] = (
    ("rollback", "rollback", True, "make VERSION the active version again"),
    ("evaluate-now", "evaluate_now", False, "evaluate the challenger now"),
    ("pause", "pause_promotions", False, "stop promoting (evaluations go on)"),
    ("resume", "resume_promotions", False, "promote again"),
    ("pin-baseline", "pin_baseline", True, "evaluate challengers against VERSION"),
    ("unpin-baseline", "unpin_baseline", False, "evaluate against the active version again"),
)
"""(CLI name, contract command name, needs VERSION, help)."""


def register(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:  # type: ignore[type-arg]
    """Add ``produce`` and ``admin`` to the ``memabrad`` parser."""
    p = sub.add_parser("produce", help="publish trajectory JSON/JSONL to the trajectory topic")
    common(p)
    p.add_argument("file", metavar="FILE", help="JSON (object or array) or JSONL file of trajectories, '-' for stdin")
    _kafka_options(p)
    p.add_argument("--topic", help="topic to publish to (default: kafka.topics.trajectories)")
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("admin", help="publish a signed admin command to the daemon")
    admin_sub = p.add_subparsers(dest="admin_command", metavar="SUBCOMMAND")
    admin_sub.required = True
    for name, command, needs_version, help_text in ADMIN_SUBCOMMANDS:
        # Options live on each leaf parser: argparse would not accept them after SUBCOMMAND otherwise.
        q = admin_sub.add_parser(name, help=help_text)
        common(q)
        if needs_version:
            q.add_argument("version", metavar="VERSION")
        q.add_argument("--reason", help="why (kept in the audit trail)")
        q.add_argument("--requested-by", help="who asks (default: $USER@hostname, else 'cli')")
        q.add_argument("--request-id", help="idempotency key of the command (default: a fresh UUID)")
        _kafka_options(q)
        q.add_argument("--wait", action="store_true", help="wait for the daemon's answer; exit 1 if rejected")
        q.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                       help="with --wait, how long to wait for the answer (default 30)")
        q.set_defaults(func=cmd_admin, wire_command=command)


def _kafka_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (default: kafka.bootstrap_servers)")


def _config(args: argparse.Namespace) -> Config:
    cfg = load_cli_config(args)
    if args.bootstrap_servers:
        cfg.kafka.bootstrap_servers = args.bootstrap_servers
    try:
        client_kwargs(cfg.kafka)  # SASL/TLS settings are checked before any network work
    except ConfigError as err:
        raise UsageError(str(err)) from None
    except OSError as err:  # unreadable TLS files
        raise UsageError(f"kafka TLS settings: {err}") from None
    return cfg


def _run(cfg: Config, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``, turning Kafka failures into CLI errors (exit 1).

    Without logging set up, aiokafka's own error logs would reach stderr through
    logging's last-resort handler and duplicate our one-line message; they are muted then.
    """
    kafka_log = logging.getLogger("aiokafka")
    level = kafka_log.level
    if not logging.getLogger().handlers:
        kafka_log.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(coro)
    except _UNREACHABLE as err:
        detail = str(err) or type(err).__name__
        raise CliError(f"cannot reach Kafka at {cfg.kafka.bootstrap_servers}: {detail}") from None
    except KafkaError as err:
        raise CliError(f"Kafka error: {err}") from None
    finally:
        kafka_log.setLevel(level)


async def _bounded(aw: Awaitable[T], what: str) -> T:
    try:
        return await asyncio.wait_for(aw, CONNECT_TIMEOUT_S)
    except TimeoutError:
        raise KafkaTimeoutError(f"{what} took longer than {CONNECT_TIMEOUT_S:g} s") from None


async def _close_quietly(client: AIOKafkaProducer | AIOKafkaConsumer | None) -> None:
    """Stop a client without masking the error that brought us here, and without hanging on a dead broker."""
    if client is None:
        return
    with contextlib.suppress(Exception):  # best effort on the way out
        await asyncio.wait_for(client.stop(), CONNECT_TIMEOUT_S)


# -- produce ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One trajectory as it will be sent: the line it starts on and its bytes."""

    line: int
    value: bytes


_WS_RUN: Final = re.compile(r"[ \t\r\n]*")


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _array_records(text: str, start: int, name: str) -> Iterator[Record]:
    """Elements of a top-level JSON array with the line each starts on, re-encoded compactly."""
    decoder = json.JSONDecoder()
    n = len(text)

    def skip(i: int) -> int:
        return _WS_RUN.match(text, i).end()  # type: ignore[union-attr]

    line, counted = 1, 0
    pos = skip(start + 1)
    if pos < n and text[pos] == "]":
        pos = skip(pos + 1)
    else:
        while True:
            line += text.count("\n", counted, pos)
            counted = pos
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as err:
                raise UsageError(f"{name}:{err.lineno}: invalid JSON: {err.msg}") from None
            yield Record(line, json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
            pos = skip(pos)
            if pos < n and text[pos] == ",":
                pos = skip(pos + 1)
                continue
            if pos < n and text[pos] == "]":
                pos = skip(pos + 1)
                break
            raise UsageError(f"{name}:{_line_of(text, pos)}: invalid JSON: expected ',' or ']' in the array")
    if pos < n:
        raise UsageError(f"{name}:{_line_of(text, pos)}: invalid JSON: extra data after the array")


def _is_json(chunk: bytes) -> bool:
    try:
        json.loads(chunk)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False
    return True


def _single_document(text: str, start: int) -> bool:
    """True when ``text`` holds exactly one JSON value (e.g. a pretty-printed object)."""
    try:
        _, end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        return False
    return _WS_RUN.match(text, end).end() == len(text)  # type: ignore[union-attr]


def read_records(data: bytes, name: str) -> list[Record]:
    """Split file contents into trajectories: a JSON array, a single JSON object, or JSONL.

    JSONL lines are kept byte for byte (only the line terminator is dropped) so what
    reaches Kafka is what the file holds; array elements are re-encoded compactly.
    Structural problems of a JSON array raise UsageError; per-record problems are
    left to validation so all of them get reported.
    """
    data = data.removeprefix(b"\xef\xbb\xbf")
    lines = [(number, line.removesuffix(b"\r")) for number, line in enumerate(data.split(b"\n"), 1)
             if line and not line.isspace()]
    if not lines:
        return []
    first = lines[0][1].lstrip()
    if first.startswith(b"[") or not _is_json(first):
        # An array, or a first line that is no JSON value by itself: maybe one multi-line document.
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None  # per-line validation names the offending lines
        if text is not None:
            start = _WS_RUN.match(text).end()  # type: ignore[union-attr]
            if text.startswith("[", start):
                return list(_array_records(text, start, name))
            if _single_document(text, start):
                return [Record(lines[0][0], data.strip())]
    return [Record(number, line) for number, line in lines]


def _describe_invalid(err: InvalidMessage) -> str:
    """``field: reason`` without repeating the field when the reason already starts with it."""
    if not err.field or err.reason.startswith(f"{err.field}:"):
        return err.reason
    return f"{err.field}: {err.reason}"


def validate_records(records: list[Record], name: str, max_bytes: int) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """(key, value) pairs to send, and one ``FILE:LINE: field: reason`` per invalid record."""
    pairs: list[tuple[bytes, bytes]] = []
    errors: list[str] = []
    keys: dict[str, bytes] = {}
    with _gc_paused():
        for rec in records:
            try:
                router_id = parse_trajectory(rec.value, max_bytes=max_bytes).router_id
            except InvalidTrajectory as err:
                errors.append(f"{name}:{rec.line}: {_describe_invalid(err)}")
                continue
            key = keys.get(router_id)
            if key is None:
                key = keys[router_id] = router_id.encode("utf-8")
            pairs.append((key, rec.value))
    return pairs, errors


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: the models are acyclic garbage, and full collections over the
    growing list of records would otherwise cost a large share of the validation time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_input(path: str) -> tuple[bytes, str]:
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        return (stream.read() if stream is not None else sys.stdin.read().encode("utf-8")), "<stdin>"
    try:
        with open(path, "rb") as fh:
            return fh.read(), path
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None


async def _publish(cfg: Config, topic: str, pairs: list[tuple[bytes, bytes]]) -> int:
    """Send all pairs in explicit per-partition batches; returns how many were acknowledged.

    Builds batches directly (``create_batch``/``send_batch``) rather than one ``send`` per
    record: that is ~3x faster. Partitions follow Kafka's default partitioner (murmur2 of
    the key), so records land where any other producer keyed by ``router_id`` puts them.
    """
    await _bounded(ensure_topics(cfg, names=[topic]), "creating the topic")
    producer = AIOKafkaProducer(**client_kwargs(cfg.kafka), linger_ms=5, enable_idempotence=False, acks="all",
                                max_batch_size=BATCH_BYTES, request_timeout_ms=REQUEST_TIMEOUT_MS,
                                max_request_size=max(cfg.kafka.max_message_bytes * 2, 2_097_152))
    delivered = 0
    connected = False
    try:
        await _bounded(producer.start(), "connecting")
        partitions = sorted(await _bounded(producer.partitions_for(topic), "fetching topic metadata"))
        connected = True
        partition_of: dict[bytes, int] = {}
        open_batches: dict[int, tuple[Any, int]] = {}
        pending: deque[tuple[asyncio.Future[Any], int]] = deque()
        in_flight = 0

        async def submit(partition: int) -> None:
            nonlocal in_flight, delivered
            batch, count = open_batches.pop(partition)
            batch.close()
            pending.append((await producer.send_batch(batch, topic, partition=partition), count))
            in_flight += count
            while in_flight >= MAX_IN_FLIGHT:
                fut, n = pending.popleft()
                await fut
                in_flight -= n
                delivered += n

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
        while pending:
            fut, n = pending.popleft()
            await fut
            delivered += n
    except KafkaError as err:
        if connected:  # reached the broker: this is about delivery, not connectivity
            raise CliError(f"delivery to {topic} failed after {delivered} of {len(pairs)} trajectories: "
                           f"{err}") from None
        raise
    finally:
        await _close_quietly(producer)
    return delivered


def cmd_produce(args: argparse.Namespace) -> int:
    """Validate the whole input first, so a bad file sends nothing; then publish the original bytes."""
    cfg = _config(args)
    topic = args.topic or cfg.kafka.topics.trajectories
    data, name = _read_input(args.file)
    pairs, errors = validate_records(read_records(data, name), name, cfg.kafka.max_message_bytes)
    if errors:
        for line in errors[:MAX_REPORTED]:
            print(line, file=sys.stderr)
        if len(errors) > MAX_REPORTED:
            print(f"... and {len(errors) - MAX_REPORTED} more invalid trajectories", file=sys.stderr)
        raise UsageError(f"{len(errors)} invalid trajector{'y' if len(errors) == 1 else 'ies'} in {name}; "
                         "nothing sent")
    sent = _run(cfg, _publish(cfg, topic, pairs)) if pairs else 0
    if args.json:
        print(json.dumps({"sent": sent, "topic": topic}, sort_keys=True))
    else:
        print(f"sent {sent} trajectories to {topic}")
    return 0


# -- admin ------------------------------------------------------------------------------


def _default_requested_by() -> str:
    user = os.environ.get("USER")
    return f"{user}@{socket.gethostname()}" if user else "cli"


def build_admin_command(args: argparse.Namespace, cfg: Config, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The admin command v1 object, validated and (when a key is configured) signed."""
    env = os.environ if environ is None else environ
    cmd: dict[str, Any] = {
        "schema_version": 1,
        "command": args.wire_command,
        "request_id": args.request_id if args.request_id is not None else str(uuid.uuid4()),
        "router_id": args.router,
        "issued_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "requested_by": args.requested_by or _default_requested_by(),
    }
    if getattr(args, "version", None) is not None:
        cmd["version_id"] = args.version
    if args.reason is not None:
        cmd["reason"] = args.reason
    try:
        parse_admin_command(json.dumps(cmd))
    except InvalidAdminCommand as err:
        raise UsageError(f"bad command: {_describe_invalid(err)}") from None
    key_env = cfg.admin.hmac_key_env
    if key_env:
        key = env.get(key_env)
        if key is None:
            raise UsageError(f"admin.hmac_key_env names environment variable {key_env}, which is not set")
        if not key:
            raise UsageError(f"environment variable {key_env} (admin.hmac_key_env) is empty")
        cmd["signature"] = sign_command(cmd, key)
    return cmd


async def _start_answer_reader(cfg: Config) -> AIOKafkaConsumer:
    """A group-less consumer positioned at the current end of every router-events partition.

    Positions are resolved before the command is published, so even an instant answer is seen.
    """
    topic = cfg.kafka.topics.router_events
    consumer = AIOKafkaConsumer(**client_kwargs(cfg.kafka), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="latest", request_timeout_ms=REQUEST_TIMEOUT_MS)
    try:
        await _bounded(consumer.start(), "connecting")
        count = await _bounded(topic_partitions(cfg, topic), "fetching topic metadata")
        tps = [TopicPartition(topic, i) for i in range(count)]
        consumer.assign(tps)
        await _bounded(consumer.seek_to_end(*tps), "seeking to the end of the events topic")
        for tp in tps:
            await _bounded(consumer.position(tp), "reading the events topic position")
    except BaseException:
        await _close_quietly(consumer)
        raise
    return consumer


async def _await_answer(consumer: AIOKafkaConsumer, request_id: str, timeout: float) -> dict[str, Any] | None:
    """The first answer event carrying ``request_id``, or None after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (remaining := deadline - loop.time()) > 0:
        batches = await consumer.getmany(timeout_ms=max(1, int(min(remaining, 1.0) * 1000)))
        for messages in batches.values():
            for msg in messages:
                try:
                    event = parse_json_object(msg.value if msg.value is not None else b"")
                except InvalidMessage:
                    continue  # not ours to judge; keep looking
                if event.get("request_id") == request_id and event.get("type") in ANSWER_TYPES:
                    return event
    return None


async def _send_admin(cfg: Config, cmd: dict[str, Any], wait: bool, timeout: float) -> dict[str, Any] | None:
    topics = cfg.kafka.topics
    await _bounded(ensure_topics(cfg, names=[topics.admin, topics.router_events] if wait else [topics.admin]),
                   "creating topics")
    consumer = await _start_answer_reader(cfg) if wait else None
    producer = AIOKafkaProducer(**client_kwargs(cfg.kafka), enable_idempotence=False, acks="all",
                                request_timeout_ms=REQUEST_TIMEOUT_MS)
    try:
        await _bounded(producer.start(), "connecting")
        value = json.dumps(cmd, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        await _bounded(producer.send_and_wait(topics.admin, value, key=cmd["router_id"].encode("utf-8")),
                       "publishing the command")
        if consumer is None:
            return None
        return await _await_answer(consumer, cmd["request_id"], timeout)
    finally:
        await _close_quietly(producer)
        await _close_quietly(consumer)


def cmd_admin(args: argparse.Namespace) -> int:
    """Publish one admin command; with --wait, report the daemon's answer through the exit code."""
    if args.wait and not args.timeout > 0:
        raise UsageError("--timeout must be > 0")
    cfg = _config(args)
    cmd = build_admin_command(args, cfg)
    topic = cfg.kafka.topics.admin
    answer = _run(cfg, _send_admin(cfg, cmd, args.wait, args.timeout))
    if not args.wait:
        if args.json:
            print(json.dumps({"request_id": cmd["request_id"], "topic": topic, "command": cmd}, sort_keys=True))
        else:
            print(f"request_id: {cmd['request_id']}")
            print(f"sent to {topic}: {json.dumps(cmd, sort_keys=True, ensure_ascii=False)}")
        return 0
    if answer is None:
        raise CliError(f"no answer within {args.timeout:g} s (request_id {cmd['request_id']}); is the daemon running?")
    print(json.dumps(answer, indent=2, sort_keys=True, ensure_ascii=False))
    if answer.get("type") == "admin.rejected":
        raise CliError(f"command rejected: {answer.get('reason') or 'no reason given'}")
    return 0
