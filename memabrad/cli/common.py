"""Helpers every ``memabrad`` command shares: common options, config, the store, output, Kafka runs.

Commands that talk to a broker bound every network step in time: an unreachable broker
is reported ("cannot reach Kafka at ...", exit 1) within seconds instead of hanging.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, Final, TypeVar

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)

from memabrad.cli.errors import CliError, UsageError
from memabrad.config import Config, ConfigError, default_config_path, load_config
from memabrad.kafka.client import client_kwargs
from memabrad.store.versions import RouterVersionStore

T = TypeVar("T")

CONNECT_TIMEOUT_S: Final = 15.0
"""Upper bound for each connect / metadata / single-send step."""
REQUEST_TIMEOUT_MS: Final = 10_000
_UNREACHABLE: Final = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError, TimeoutError,
                       ConnectionError)


def add_common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="config file (default: ./config.yaml when present, else built-in defaults)")
    p.add_argument("--base-dir", help="store base directory (store.base_dir)")
    p.add_argument("--router", default="default", help="router id (default: default)")
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")


def load_cli_config(args: argparse.Namespace) -> Config:
    """Config from ``-c`` (or ./config.yaml), environment, then ``--base-dir``."""
    try:
        cfg = load_config(args.config if args.config else default_config_path())
    except ConfigError as err:
        raise UsageError(str(err)) from None
    if getattr(args, "base_dir", None):
        cfg.store.base_dir = args.base_dir
    return cfg


def open_store(args: argparse.Namespace, cfg: Config) -> RouterVersionStore:
    try:
        return RouterVersionStore(cfg.store.base_dir, args.router)
    except ValueError as err:
        raise UsageError(f"--router {args.router!r}: {err}") from None


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    if getattr(args, "json", False) or text is None:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(text)


# -- Kafka --------------------------------------------------------------------------------


def add_kafka_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (default: kafka.bootstrap_servers)")


def load_kafka_config(args: argparse.Namespace) -> Config:
    """The config with ``--bootstrap-servers`` applied; SASL/TLS settings are checked before any network work."""
    cfg = load_cli_config(args)
    if args.bootstrap_servers:
        cfg.kafka.bootstrap_servers = args.bootstrap_servers
    try:
        client_kwargs(cfg.kafka)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    except OSError as err:  # unreadable TLS files
        raise UsageError(f"kafka TLS settings: {err}") from None
    return cfg


def run_kafka(cfg: Config, coro: Coroutine[Any, Any, T]) -> T:
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


async def bounded(aw: Awaitable[T], what: str) -> T:
    """``aw``, or ``KafkaTimeoutError`` naming ``what`` after ``CONNECT_TIMEOUT_S``."""
    try:
        return await asyncio.wait_for(aw, CONNECT_TIMEOUT_S)
    except TimeoutError:
        raise KafkaTimeoutError(f"{what} took longer than {CONNECT_TIMEOUT_S:g} s") from None
