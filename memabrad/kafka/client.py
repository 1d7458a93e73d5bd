"""aiokafka client settings from the ``kafka`` config section, security included.

TLS files and the SASL mechanism come from the config; SASL credentials come from the
environment variables the config names, so secrets never sit in config files.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from memabrad.config import ConfigError, KafkaConfig


def client_kwargs(cfg: KafkaConfig, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments shared by every aiokafka client memabrad creates.

    >>> client_kwargs(KafkaConfig(bootstrap_servers="b:9092"))["security_protocol"]
    'PLAINTEXT'
    """
    env = os.environ if environ is None else environ
    kw: dict[str, Any] = {
        "bootstrap_servers": cfg.bootstrap_servers,
        "client_id": cfg.client_id,
        "security_protocol": cfg.security_protocol,
    }
    if cfg.security_protocol in ("SSL", "SASL_SSL"):
        ctx = ssl.create_default_context(cafile=cfg.ssl_cafile)
        if cfg.ssl_certfile:
            ctx.load_cert_chain(cfg.ssl_certfile, cfg.ssl_keyfile)
        kw["ssl_context"] = ctx
    if cfg.security_protocol.startswith("SASL"):
        if not cfg.sasl_mechanism:
            raise ConfigError("kafka.sasl_mechanism is required with a SASL security_protocol")
        kw["sasl_mechanism"] = cfg.sasl_mechanism
        for key, env_key in (("sasl_plain_username", cfg.sasl_username_env),
                             ("sasl_plain_password", cfg.sasl_password_env)):
            if not env_key or env_key not in env:
                name = "sasl_username_env" if key.endswith("username") else "sasl_password_env"
                raise ConfigError(f"kafka.{name}: environment variable {env_key!r} is not set")
            kw[key] = env[env_key]
    return kw


def partition_for_key(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) picks for ``key``.

    Producers key by ``router_id``, so this says which partition — and so which daemon
    instance — owns a router.
    """
    from aiokafka.partitioner import murmur2

    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions
