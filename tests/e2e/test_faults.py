"""Faults that must neither lose data nor wedge the daemon: disk failure, corrupt state, admin isolation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka_harness import ALWAYS_PROMOTE, DaemonFactory, DaemonProcess, KafkaIO, Producer, Topics
from polling import wait_until

from memabrad.sim import Simulator
from memabrad.store.versions import RouterVersionStore

pytestmark = pytest.mark.e2e


def _checkpoint_dir(d: DaemonProcess, partition: int = 0) -> Path:
    return d.base_dir / "_checkpoints" / d.group_id / f"{d.topics.trajectories}-{partition}"


def test_disk_failure_stops_commits_turns_not_ready_and_recovers(kafka: KafkaIO, daemons: DaemonFactory,
                                                                 producer: Producer) -> None:
    topics = Topics.unique("disk")
    kafka.create_topics(topics)
    sim = Simulator(seed=71)
    d = daemons.new("disk", topics, env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": "100000"}).wait_ready()
    producer.send_trajectories(topics.trajectories, sim.generate(1000))
    d.wait_consumed({0: 1000}, timeout=120)
    wait_until(lambda: kafka.committed(d.group_id, topics.trajectories, 0) == 1000, 60, "first commit")

    # A real OS-level failure: the partition's checkpoint directory becomes a file (ENOTDIR on every write).
    ckpt = _checkpoint_dir(d)
    parked = ckpt.with_name(ckpt.name + ".parked")
    ckpt.rename(parked)
    ckpt.write_text("not a directory")
    producer.send_trajectories(topics.trajectories, sim.generate(500))
    d.wait_consumed({0: 1500}, timeout=120)
    wait_until(lambda: not d.is_ready(), 60, "/readyz to turn 503 while checkpoints fail")
    wait_until(lambda: d.metrics().sum("memabrad_checkpoints_total", result="failed") >= 1, 30, "failure counted")
    assert d.alive
    assert kafka.committed(d.group_id, topics.trajectories, 0) == 1000, "no commit without a durable checkpoint"

    ckpt.unlink()
    parked.rename(ckpt)
    wait_until(d.is_ready, 90, "/readyz to recover with the disk")
    wait_until(lambda: kafka.committed(d.group_id, topics.trajectories, 0) == 1500, 60, "the commit after recovery")

    d.kill9()
    d.start().wait_ready()
    router = d.router()
    assert router is not None and router["trajectories_learned"] == 1500


def test_corrupt_state_at_start_up(kafka: KafkaIO, daemons: DaemonFactory, producer: Producer) -> None:
    topics = Topics.unique("corrupt")
    kafka.create_topics(topics)
    events = kafka.events(topics.router_events)
    d = daemons.new("corrupt", topics, env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": "1000",
                                            **ALWAYS_PROMOTE}).wait_ready()
    producer.send_trajectories(topics.trajectories, Simulator(seed=72).generate(3000))
    d.wait_consumed({0: 3000}, timeout=120)
    events.wait_events(lambda evs: any(e["type"] == "router.promoted" for e in evs), 90, "a promotion")
    wait_until(lambda: len(list(_checkpoint_dir(d).glob("gen-*.npz"))) >= 2, 60, "two checkpoint generations")
    assert d.stop() == 0

    # A truncated newest checkpoint generation: skipped with its name logged, the previous one is used.
    newest = sorted(_checkpoint_dir(d).glob("gen-*.npz"))[-1]
    newest.write_bytes(newest.read_bytes()[:64])
    d.start().wait_ready()
    d.wait_consumed({0: 3000}, timeout=120)
    router = d.router()
    assert router is not None and router["trajectories_learned"] == 3000
    assert newest.name in d.log_tail()
    assert d.stop() == 0

    store = RouterVersionStore(d.base_dir, "default")
    current = store.get_current()
    assert current is not None
    saved = store.current_path.read_bytes()

    # A truncated current.json: the daemon refuses to start on it and names the file.
    store.current_path.write_bytes(saved[: len(saved) // 2])
    d.start()
    assert d.wait_exit(90) != 0
    assert "current.json" in d.log_tail()
    store.current_path.write_bytes(saved)

    # A tampered active version: refused, the message names the model file.
    model = store.version_dir(current["version_id"]) / "model.json"
    good = model.read_bytes()
    model.write_bytes(good.replace(b'{', b'{ ', 1))  # still valid JSON; its sha256 no longer matches
    d.start()
    assert d.wait_exit(90) != 0
    assert "model.json" in d.log_tail()
    model.write_bytes(good)

    d.start().wait_ready()
    assert d.router() is not None


def test_admin_commands_cannot_arrive_through_the_trajectory_topic(kafka: KafkaIO, daemons: DaemonFactory,
                                                                   producer: Producer) -> None:
    topics = Topics.unique("isolation")
    kafka.create_topics(topics)
    events = kafka.events(topics.router_events)
    dlq = kafka.dead_letters(topics.dead_letter)
    d = daemons.new("isolation", topics).wait_ready()
    producer.send_trajectories(topics.trajectories, Simulator(seed=73).generate(50))
    d.wait_consumed({0: 50}, timeout=60)
    cmd = {"schema_version": 1, "command": "pause_promotions", "request_id": "sneaky-1", "router_id": "default",
           "issued_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "requested_by": "someone"}
    producer.send_json(topics.trajectories, cmd, key="default")
    dlq.wait_for(lambda recs: len(recs) == 1, 60, "the command dead-lettered as an invalid trajectory")
    d.wait_consumed({0: 51}, timeout=60)
    assert json.loads(dlq.records()[0].value or b"{}") == cmd
    assert events.answers("sneaky-1") == []
    assert not RouterVersionStore(d.base_dir, "default").promotions_paused()
    router = d.router()
    assert router is not None and router["invalid"] == 1

