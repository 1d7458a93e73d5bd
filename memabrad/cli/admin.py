"""``memabrad admin``: publish a signed operator command to the daemon, optionally waiting for its answer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition

from memabrad.cli.common import (
    CONNECT_TIMEOUT_S,
    REQUEST_TIMEOUT_MS,
    add_common_options,
    add_kafka_options,
    bounded,
    load_kafka_config,
    run_kafka,
)
from memabrad.cli.errors import CliError, UsageError
from memabrad.config import Config
from memabrad.kafka.client import client_kwargs
from memabrad.kafka.topics import ensure_topics, topic_partitions
from memabrad.wire import InvalidAdminCommand, InvalidMessage, parse_admin_command, sign_command
from memabrad.wire.parse import parse_json_object
from memabrad.wire.producer import OutRecord, ProducerSettings, RecordProducer
from memabrad.wire.records import describe_invalid

__all__ = ["ADMIN_SUBCOMMANDS", "build_admin_command", "cmd_admin", "register"]

ANSWER_TYPES: Final = frozenset({"admin.applied", "admin.rejected", "router.rolled_back"})

ADMIN_SUBCOMMANDS: Final[tuple[tuple[str, str, bool, str], ...]] = (
    ("rollback", "rollback", True, "make VERSION the active version again"),
    ("evaluate-now", "evaluate_now", False, "evaluate the challenger now"),
    ("pause", "pause_promotions", False, "stop promoting (evaluations go on)"),
    ("resume", "resume_promotions", False, "promote again"),
    ("pin-baseline", "pin_baseline", True, "evaluate challengers against VERSION"),
    ("unpin-baseline", "unpin_baseline", False, "evaluate against the active version again"),
)
"""(CLI name, contract command name, needs VERSION, help)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("admin", help="publish a signed admin command to the daemon")
    admin_sub = p.add_subparsers(dest="admin_command", metavar="SUBCOMMAND")
    admin_sub.required = True
    for name, command, needs_version, help_text in ADMIN_SUBCOMMANDS:
        # Options live on each leaf parser: argparse would not accept them after SUBCOMMAND otherwise.
        q = admin_sub.add_parser(name, help=help_text)
        add_common_options(q)
        if needs_version:
            q.add_argument("version", metavar="VERSION")
        q.add_argument("--reason", help="why (kept in the audit trail)")
        q.add_argument("--requested-by", help="who asks (default: $USER@hostname, else 'cli')")
        q.add_argument("--request-id", help="idempotency key of the command (default: a fresh UUID)")
        add_kafka_options(q)
        q.add_argument("--wait", action="store_true", help="wait for the daemon's answer; exit 1 if rejected")
        q.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                       help="with --wait, how long to wait for the answer (default 30)")
        q.set_defaults(func=cmd_admin, wire_command=command)


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
        raise UsageError(f"bad command: {describe_invalid(err)}") from None
    key_env = cfg.admin.hmac_key_env
    if key_env:
        key = env.get(key_env)
        if key is None:
            raise UsageError(f"admin.hmac_key_env names environment variable {key_env}, which is not set")
        if not key:
            raise UsageError(f"environment variable {key_env} (admin.hmac_key_env) is empty")
        cmd["signature"] = sign_command(cmd, key)
    return cmd


async def _close_quietly(consumer: AIOKafkaConsumer | None) -> None:
    """Stop the consumer without masking the error that brought us here, and without hanging on a dead broker."""
    if consumer is None:
        return
    with contextlib.suppress(Exception):  # best effort on the way out
        await asyncio.wait_for(consumer.stop(), CONNECT_TIMEOUT_S)


async def _start_answer_reader(cfg: Config) -> AIOKafkaConsumer:
    """A group-less consumer positioned at the current end of every router-events partition.

    Positions are resolved before the command is published, so even an instant answer is seen.
    """
    topic = cfg.kafka.topics.router_events
    consumer = AIOKafkaConsumer(**client_kwargs(cfg.kafka), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="latest", request_timeout_ms=REQUEST_TIMEOUT_MS)
    try:
        await bounded(consumer.start(), "connecting")
        count = await bounded(topic_partitions(cfg, topic), "fetching topic metadata")
        tps = [TopicPartition(topic, i) for i in range(count)]
        consumer.assign(tps)
        await bounded(consumer.seek_to_end(*tps), "seeking to the end of the events topic")
        for tp in tps:
            await bounded(consumer.position(tp), "reading the events topic position")
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
    await bounded(ensure_topics(cfg, names=[topics.admin, topics.router_events] if wait else [topics.admin]),
                  "creating topics")
    consumer = await _start_answer_reader(cfg) if wait else None
    producer = RecordProducer(cfg.kafka, ProducerSettings(linger_ms=0, request_timeout_ms=REQUEST_TIMEOUT_MS))
    try:
        await bounded(producer.start(), "connecting")
        value = json.dumps(cmd, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        await bounded(producer.send_and_wait(OutRecord(topics.admin, value, cmd["router_id"].encode("utf-8"))),
                      "publishing the command")
        if consumer is None:
            return None
        return await _await_answer(consumer, cmd["request_id"], timeout)
    finally:
        await producer.stop(CONNECT_TIMEOUT_S)
        await _close_quietly(consumer)


def cmd_admin(args: argparse.Namespace) -> int:
    """Publish one admin command; with --wait, report the daemon's answer through the exit code."""
    if args.wait and not args.timeout > 0:
        raise UsageError("--timeout must be > 0")
    cfg = load_kafka_config(args)
    cmd = build_admin_command(args, cfg)
    topic = cfg.kafka.topics.admin
    answer = run_kafka(cfg, _send_admin(cfg, cmd, args.wait, args.timeout))
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
