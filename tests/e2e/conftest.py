"""Fixtures of the end-to-end tests: a broker per module, Kafka I/O, daemons (always killed), a producer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from memabrad.kafka.embedded import EmbeddedBroker

from .harness import DaemonFactory, KafkaIO, Producer, clean_environ, wait_until

CLI_WAIT_S = 600.0


def _cli_importable() -> bool:
    res = subprocess.run([sys.executable, "-m", "memabrad", "run", "--help"], capture_output=True,
                         env=clean_environ(), timeout=60)
    return res.returncode == 0


@pytest.fixture(scope="session")
def memabrad_cli() -> None:
    """``python -m memabrad run`` must import (a colleague may still be writing a CLI module): wait for it."""
    wait_until(_cli_importable, CLI_WAIT_S, "`python -m memabrad run --help` to succeed", interval=5.0)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def kafka(broker: EmbeddedBroker) -> Iterator[KafkaIO]:
    io = KafkaIO(broker.bootstrap_servers)
    try:
        yield io
    finally:
        io.close()


@pytest.fixture
def daemons(request: pytest.FixtureRequest, kafka: KafkaIO, tmp_path: Path, memabrad_cli: None
            ) -> Iterator[DaemonFactory]:
    factory = DaemonFactory(kafka, tmp_path)
    request.node.daemon_factory = factory
    try:
        yield factory
    finally:
        factory.kill_all()


@pytest.fixture
def producer(kafka: KafkaIO) -> Iterator[Producer]:
    p = kafka.producer()
    try:
        yield p
    finally:
        p.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the daemons' logs to the report of a failed test."""
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    factory = getattr(item, "daemon_factory", None)
    if rep.failed and factory is not None and rep.when in ("setup", "call"):
        rep.sections.append(("daemon logs", factory.logs()))
