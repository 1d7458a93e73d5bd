"""``memabrad produce``: trajectory files (JSON, JSONL, stdin) -> the trajectory topic."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

from aiokafka.errors import KafkaError

from memabrad.cli import common
from memabrad.cli.errors import CliError, UsageError
from memabrad.config import Config
from memabrad.kafka.topics import ensure_topics
from memabrad.wire.producer import ProducerSettings, RecordProducer
from memabrad.wire.records import RecordFileError, read_records, read_source, validate_records

__all__ = ["cmd_produce", "register"]

BATCH_BYTES: Final = 512 * 1024
"""Large batches: per-batch overhead, not bytes, bounds the producer's rate (16 KiB batches halve it)."""
MAX_IN_FLIGHT: Final = 10_000
"""Records handed to the producer but not yet acknowledged; bounds memory on huge files."""
MAX_REPORTED: Final = 100
"""Invalid records printed one per line before summarising the rest."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("produce", help="publish trajectory JSON/JSONL to the trajectory topic")
    common.add_common_options(p)
    p.add_argument("file", metavar="FILE", help="JSON (object or array) or JSONL file of trajectories, '-' for stdin")
    common.add_kafka_options(p)
    p.add_argument("--topic", help="topic to publish to (default: kafka.topics.trajectories)")
    p.set_defaults(func=cmd_produce)


async def _publish(cfg: Config, topic: str, pairs: list[tuple[bytes, bytes]]) -> int:
    """Send all pairs; returns how many were acknowledged."""
    await common.bounded(ensure_topics(cfg, names=[topic]), "creating the topic")
    producer = RecordProducer(cfg.kafka, ProducerSettings(
        max_batch_bytes=BATCH_BYTES, request_timeout_ms=common.REQUEST_TIMEOUT_MS, max_in_flight=MAX_IN_FLIGHT))
    connected = False
    try:
        await common.bounded(producer.start(), "connecting")
        partitions = await common.bounded(producer.partitions_for(topic), "fetching topic metadata")
        connected = True
        await producer.send_batches(topic, partitions, pairs)
    except KafkaError as err:
        if connected:  # reached the broker: this is about delivery, not connectivity
            raise CliError(f"delivery to {topic} failed after {producer.delivered} of {len(pairs)} trajectories: "
                           f"{err}") from None
        raise
    finally:
        await producer.stop(common.CONNECT_TIMEOUT_S)
    return producer.delivered


def cmd_produce(args: argparse.Namespace) -> int:
    """Validate the whole input first, so a bad file sends nothing; then publish the original bytes."""
    cfg = common.load_kafka_config(args)
    topic = args.topic or cfg.kafka.topics.trajectories
    try:
        data, name = read_source(args.file)
        records = read_records(data, name)
    except RecordFileError as err:
        raise UsageError(str(err)) from None
    pairs, errors = validate_records(records, name, cfg.kafka.max_message_bytes)
    if errors:
        for line in errors[:MAX_REPORTED]:
            print(line, file=sys.stderr)
        if len(errors) > MAX_REPORTED:
            print(f"... and {len(errors) - MAX_REPORTED} more invalid trajectories", file=sys.stderr)
        raise UsageError(f"{len(errors)} invalid trajector{'y' if len(errors) == 1 else 'ies'} in {name}; "
                         "nothing sent")
    sent = common.run_kafka(cfg, _publish(cfg, topic, pairs)) if pairs else 0
    if args.json:
        print(json.dumps({"sent": sent, "topic": topic}, sort_keys=True))
    else:
        print(f"sent {sent} trajectories to {topic}")
    return 0
