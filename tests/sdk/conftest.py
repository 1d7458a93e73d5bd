"""The SDK tests' daemon: one real daemon per module that asks for it, on the module's broker (fixtures_kafka).

It promotes every evaluation (point mode, permissive gates, no guard) after ``PROMOTE_EVERY``
trajectories, so a test gets a new version by sending exactly ``PROMOTE_EVERY`` trajectories
for its own router; distinct routers keep the tests independent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from kafka_harness import ALWAYS_PROMOTE, PROMOTE_EVERY, DaemonProcess, Topics

from memabrad.kafka.embedded import EmbeddedBroker
from memabrad.kafka.topics import ensure_topics

READY_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def daemon(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """The real daemon on a fresh base dir and fresh topics, promoting every ``PROMOTE_EVERY`` trajectories."""
    tmp = tmp_path_factory.mktemp("sdk-daemon")
    topics = Topics.unique("daemon", suite="sdk")
    asyncio.run(ensure_topics(topics.config(broker.bootstrap_servers)))
    d = DaemonProcess("sdk", broker.bootstrap_servers, tmp / "base", topics, f"sdk-{uuid.uuid4().hex[:8]}", tmp,
                      env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": str(PROMOTE_EVERY), **ALWAYS_PROMOTE,
                           "MEMABRAD_GUARD__ENABLED": "false"})
    try:
        yield d.start().wait_ready(READY_TIMEOUT_S)
    finally:
        d.shutdown()
