"""Kafka settings shared by the SDK clients.

The SDK takes either a plain ``bootstrap_servers`` string (the common case) or the
daemon's own ``KafkaConfig`` (TLS/SASL, custom topic names), so an agent can reuse the
daemon's config file and is guaranteed to talk to the same topics.
"""

from __future__ import annotations

from memabrad.config import Config, KafkaConfig

SDK_CLIENT_ID = "memabrad-sdk"


def resolve_kafka(bootstrap_servers: str | None, kafka: KafkaConfig | None) -> KafkaConfig:
    """One ``KafkaConfig`` from the two ways callers name a cluster; ``bootstrap_servers`` wins when both are given.

    >>> resolve_kafka("b:9092", None).bootstrap_servers
    'b:9092'
    """
    if kafka is None:
        if not bootstrap_servers:
            raise ValueError("give bootstrap_servers or a KafkaConfig")
        return KafkaConfig(bootstrap_servers=bootstrap_servers, client_id=SDK_CLIENT_ID)
    cfg = kafka.model_copy(deep=True)
    if bootstrap_servers:
        cfg.bootstrap_servers = bootstrap_servers
    return cfg


def as_config(kafka: KafkaConfig) -> Config:
    """A full ``Config`` around ``kafka``, for helpers (``ensure_topics``) that take one."""
    return Config(kafka=kafka)
