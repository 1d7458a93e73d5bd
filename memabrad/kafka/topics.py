"""Create memabrad's topics when missing, and look up partition counts.

Production clusters often disable broker-side auto-creation, and the embedded broker
auto-creates topics with its own partition count on any metadata request naming them;
creating them explicitly keeps the partition count ours. Topic listing uses an
"all topics" metadata request, which never creates anything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from memabrad.config import Config
from memabrad.kafka.client import client_kwargs

__all__ = ["ADMIN_REQUEST_TIMEOUT_MS", "config_topics", "ensure_topics", "topic_partitions"]

log = logging.getLogger(__name__)

ADMIN_REQUEST_TIMEOUT_MS = 10_000
"""Bounded so an unreachable broker fails within seconds rather than aiokafka's 40 s default."""

REPLICATION_FACTOR = 1
"""The config has no replication key; 1 suits the embedded broker and single-node clusters."""


def config_topics(cfg: Config) -> dict[str, str]:
    """Role -> topic name for the four topics of ``kafka.topics``."""
    t = cfg.kafka.topics
    return {"trajectories": t.trajectories, "router_events": t.router_events, "admin": t.admin,
            "dead_letter": t.dead_letter}


def _admin_client(cfg: Config) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_kwargs(cfg.kafka), request_timeout_ms=ADMIN_REQUEST_TIMEOUT_MS)


async def ensure_topics(
    cfg: Config,
    partitions: dict[str, int] | None = None,
    default_partitions: int = 1,
    *,
    names: Iterable[str] | None = None,
) -> None:
    """Create any missing topic of ``cfg.kafka.topics`` (or of ``names``); existing ones are left alone.

    ``partitions`` maps a role (``trajectories``...) or a topic name to its partition count;
    others get ``default_partitions``. A topic created concurrently by another process
    (TopicAlreadyExistsError) is fine; any other creation error is raised.
    """
    if default_partitions < 1:
        raise ValueError("default_partitions must be >= 1")
    roles = config_topics(cfg)
    role_of = {name: role for role, name in roles.items()}
    wanted = list(dict.fromkeys(names if names is not None else roles.values()))
    counts = partitions or {}
    admin = _admin_client(cfg)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return
        new = [NewTopic(name=n, num_partitions=counts.get(n, counts.get(role_of.get(n, ""), default_partitions)),
                        replication_factor=REPLICATION_FACTOR) for n in missing]
        response = await admin.create_topics(new)
        for topic, code, *rest in response.topic_errors:
            if code == 0:
                log.info("created topic", extra={"topic": topic})
                continue
            err_cls = for_code(code)
            if err_cls is TopicAlreadyExistsError:
                continue
            message = rest[0] if rest and rest[0] else err_cls.__name__
            raise err_cls(f"cannot create topic {topic!r}: {message}")
    finally:
        await admin.close()


async def topic_partitions(cfg: Config, topic: str) -> int:
    """The partition count of an existing ``topic``; UnknownTopicOrPartitionError when it does not exist.

    Checks existence first so the lookup never auto-creates the topic on brokers that would.
    """
    admin = _admin_client(cfg)
    try:
        await admin.start()
        if topic not in set(await admin.list_topics()):
            raise UnknownTopicOrPartitionError(f"topic {topic!r} does not exist")
        for desc in await admin.describe_topics([topic]):
            if desc["topic"] != topic:
                continue
            if desc["error_code"]:
                raise for_code(desc["error_code"])(f"cannot describe topic {topic!r}")
            return len(desc["partitions"])
        raise KafkaError(f"no metadata for topic {topic!r}")
    finally:
        await admin.close()
