"""Fixtures of the SDK tests: one embedded broker per session, one real daemon per module that asks for it.

The daemon is configured to promote every evaluation (point mode, permissive gates, no
guard) after ``MIN_NEW`` trajectories, so a test gets a new version by sending exactly
``MIN_NEW`` trajectories for its own router; distinct routers keep the tests independent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from polling import wait_until

from memabrad.config import config_from_dict
from memabrad.kafka.embedded import EmbeddedBroker, free_port
from memabrad.kafka.topics import ensure_topics

from .harness import MIN_NEW, READY_TIMEOUT_S, Daemon, Topics, daemon_ready


@pytest.fixture(scope="session")
def sdk_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(log_path=tmp_path_factory.mktemp("sdk-broker") / "broker.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def daemon(sdk_broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """The real daemon on a fresh base dir and fresh topics, promoting every ``MIN_NEW`` trajectories."""
    tmp = tmp_path_factory.mktemp("sdk-daemon")
    topics = Topics.unique("e2e")
    cfg = config_from_dict({"kafka": {"bootstrap_servers": sdk_broker.bootstrap_servers,
                                      "topics": topics.as_config()}})
    asyncio.run(ensure_topics(cfg))
    port = free_port()
    base = tmp / "base"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMABRAD_")}
    env.update({
        "PYTHONUNBUFFERED": "1",
        "MEMABRAD_KAFKA__BOOTSTRAP_SERVERS": sdk_broker.bootstrap_servers,
        "MEMABRAD_KAFKA__GROUP_ID": f"sdk-{uuid.uuid4().hex[:8]}",
        **{f"MEMABRAD_KAFKA__TOPICS__{k.upper()}": v for k, v in topics.as_config().items()},
        "MEMABRAD_STORE__BASE_DIR": str(base),
        "MEMABRAD_HTTP__HOST": "127.0.0.1",
        "MEMABRAD_HTTP__PORT": str(port),
        "MEMABRAD_LOGGING__FORMAT": "text",
        "MEMABRAD_CHECKPOINT__INTERVAL_S": "1",
        "MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": str(MIN_NEW),
        "MEMABRAD_PROMOTION__MODE": "point",
        "MEMABRAD_PROMOTION__MIN_REWARD_DELTA": "-1",
        "MEMABRAD_PROMOTION__MAX_ERROR_RATE_INCREASE": "1",
        "MEMABRAD_PROMOTION__MAX_LATENCY_INCREASE_MS": "1000000",
        "MEMABRAD_PROMOTION__REQUIRED_TASK_COUNT": "1",
        "MEMABRAD_GUARD__ENABLED": "false",
    })
    log_path = tmp / "daemon.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "memabrad", "run"], env=env, cwd=tmp, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
    d = Daemon(proc, sdk_broker.bootstrap_servers, base, topics, port, log_path)
    try:
        wait_until(lambda: daemon_ready(d), READY_TIMEOUT_S, "the daemon's /readyz", interval=0.2)
        yield d
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)


