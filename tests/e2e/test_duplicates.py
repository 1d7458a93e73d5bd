"""A trajectory id already learned is counted as a duplicate and never learned again, across a restart."""

from __future__ import annotations

import random

import pytest
from kafka_harness import DaemonFactory, KafkaIO, Producer, Topics

from memabrad.sim import Simulator

pytestmark = pytest.mark.e2e

N_FIRST = 1_500
N_RESENT = 200
N_RESENT_AFTER_RESTART = 300
N_NEW_AFTER_RESTART = 500


def test_duplicates_not_learned_twice_across_restart(kafka: KafkaIO, daemons: DaemonFactory,
                                                     producer: Producer) -> None:
    topics = Topics.unique("dup")
    kafka.create_topics(topics)
    rng = random.Random(5)
    sim = Simulator(seed=21)
    first = sim.generate(N_FIRST)
    resent = rng.sample(first, N_RESENT)

    d = daemons.new("dup", topics).wait_ready()
    producer.send_trajectories(topics.trajectories, first + resent)
    sent = N_FIRST + N_RESENT
    d.wait_consumed({0: sent}, timeout=120)
    router = d.router()
    assert router is not None
    assert (router["trajectories_learned"], router["duplicates"], router["invalid"]) == (N_FIRST, N_RESENT, 0)
    m = d.metrics()
    assert m.value("memabrad_trajectories_total", router_id="default", result="accepted") == N_FIRST
    assert m.value("memabrad_trajectories_total", router_id="default", result="duplicate") == N_RESENT

    assert d.stop(timeout=15) == 0

    # Same base dir and group: state (counts, duplicate memory) comes back from the checkpoint.
    d.start().wait_ready()
    restored = d.router()
    assert restored is not None
    assert (restored["trajectories_learned"], restored["duplicates"]) == (N_FIRST, N_RESENT)
    assert d.status()["partitions"]["0"]["next_offset"] == sent

    again = rng.sample(first, N_RESENT_AFTER_RESTART)
    new = sim.generate(N_NEW_AFTER_RESTART)
    mixed = again + new
    rng.shuffle(mixed)
    producer.send_trajectories(topics.trajectories, mixed)
    sent += len(mixed)
    d.wait_consumed({0: sent}, timeout=120)
    router = d.router()
    assert router is not None
    assert router["trajectories_learned"] == N_FIRST + N_NEW_AFTER_RESTART  # the distinct ids
    assert router["duplicates"] == N_RESENT + N_RESENT_AFTER_RESTART
    m = d.metrics()  # process-local counters: only this process's records
    assert m.value("memabrad_trajectories_total", router_id="default", result="accepted") == N_NEW_AFTER_RESTART
    assert m.value("memabrad_trajectories_total", router_id="default", result="duplicate") == N_RESENT_AFTER_RESTART
    assert d.stop(timeout=15) == 0
