"""The broker goes away and comes back empty: the daemon waits it out, says so, and loses nothing."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from kafka_harness import DaemonFactory, KafkaIO, Producer, Topics
from polling import wait_until

from memabrad.kafka.embedded import EmbeddedBroker
from memabrad.sim import Simulator

pytestmark = pytest.mark.e2e
PARTITIONS = 4  # the embedded broker auto-creates topics with 4 partitions: match it either way


@pytest.fixture
def kafka(own_broker: EmbeddedBroker) -> Iterator[KafkaIO]:
    """This module's Kafka I/O (and so its daemons and producer) on the test's own broker, which it restarts."""
    with KafkaIO(own_broker.bootstrap_servers) as io:
        yield io


def test_broker_restart_mid_stream(own_broker: EmbeddedBroker, kafka: KafkaIO, daemons: DaemonFactory,
                                   producer: Producer) -> None:
    topics = Topics.unique("restart")
    kafka.create_topics(topics, trajectory_partitions=PARTITIONS)
    sim = Simulator(seed=91)
    first = sim.generate(1500)
    d = daemons.new("restart", topics, env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": "100000"})
    d.wait_ready()
    sent = producer.send_trajectories(topics.trajectories, first)
    partition = sent[0].partition
    d.wait_consumed({partition: 1500}, timeout=120)
    wait_until(lambda: kafka.committed(d.group_id, topics.trajectories, partition) == 1500, 60, "the commit")

    own_broker.stop()
    wait_until(lambda: not d.is_ready(), 60, "/readyz to report the outage")
    assert d.alive

    own_broker.start()  # same port, empty log: the checkpoint is now ahead of the broker
    kafka.create_topics(topics, trajectory_partitions=PARTITIONS)
    resent = random.Random(1).sample(first, 300)
    producer.send_trajectories(topics.trajectories, sim.generate(1000) + resent)
    wait_until(d.is_ready, 120, "/readyz to recover")

    def learned() -> tuple[int, int] | None:
        r = d.router()
        return (r["trajectories_learned"], r["duplicates"]) if r else None

    wait_until(lambda: learned() == (2500, 300) or None, 120,
               "new records learned once, re-sent ones as duplicates")
    m = d.metrics()
    assert m.sum("memabrad_offset_resets_total", rule="log_behind_checkpoint") >= 1
    assert d.alive
    assert d.stop() == 0
