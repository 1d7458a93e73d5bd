"""Fixtures of the suites with a real broker and real daemons (see ``kafka_harness``), registered in conftest.py.

- ``broker``: an embedded broker per test module (``own_broker``: one of the test's own, to stop and restart);
- ``kafka``: the module's ``KafkaIO`` on that broker;
- ``daemons``: a ``DaemonFactory`` whose daemons are all killed when the test ends;
- ``producer``: a producer on ``kafka``, closed when the test ends.

The logs of every daemon a failed test used are attached to its report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_harness import DaemonFactory, DaemonProcess, KafkaIO, Producer

from memabrad.kafka.embedded import EmbeddedBroker


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log") as b:
        yield b


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker for this test alone (it may stop and restart it); stopped when the test ends."""
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as b:
        yield b


@pytest.fixture(scope="module")
def kafka(broker: EmbeddedBroker) -> Iterator[KafkaIO]:
    with KafkaIO(broker.bootstrap_servers) as io:
        yield io


@pytest.fixture
def daemons(kafka: KafkaIO, tmp_path: Path) -> Iterator[DaemonFactory]:
    factory = DaemonFactory(kafka, tmp_path)
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
    """Attach the logs of the test's daemons (its ``DaemonFactory`` or ``DaemonProcess`` fixtures) when it fails."""
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    if not rep.failed or rep.when not in ("setup", "call"):
        return
    logs = [v.logs() if isinstance(v, DaemonFactory) else v.log_tail()
            for v in getattr(item, "funcargs", {}).values() if isinstance(v, DaemonFactory | DaemonProcess)]
    if logs:
        rep.sections.append(("daemon logs", "\n".join(logs)))
