"""SIGTERM while trajectories stream: exit 0 within 10 s, checkpoint and committed offset agree."""

from __future__ import annotations

import time

import pytest
from kafka_harness import DaemonFactory, KafkaIO, Producer, Topics

from memabrad.daemon.checkpoint import CheckpointStore
from memabrad.sim import Simulator

pytestmark = pytest.mark.e2e

N = 12_000
STOP_AFTER = 4_000  # SIGTERM once the daemon has processed at least this many (mid-stream)


def test_sigterm_checkpoints_and_commits(kafka: KafkaIO, daemons: DaemonFactory, producer: Producer) -> None:
    topics = Topics.unique("sigterm")
    kafka.create_topics(topics)
    d = daemons.new("sigterm", topics, env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": "2000"})
    d.wait_ready()
    rows = Simulator(seed=31).generate(N)
    stream = producer.stream_trajectories(topics.trajectories, rows, chunk=200, pause_s=0.1)

    before = d.wait_status(lambda s: s if (s["partitions"]["0"]["next_offset"] or 0) >= STOP_AFTER else None,
                           120, f"{STOP_AFTER} records processed")
    processed_before = before["partitions"]["0"]["next_offset"]
    streaming_finished = stream.done()
    d.terminate()
    started = time.monotonic()
    rc = d.wait_exit(15)
    took = time.monotonic() - started
    assert rc == 0, f"exit code {rc}"
    assert took < 10, f"SIGTERM took {took:.1f}s"
    assert stream.result(120) == N

    cfg = kafka.config(topics)
    ckpt = CheckpointStore(d.base_dir, d.group_id, cfg.checkpoint.generations)
    gens = ckpt.generations(topics.trajectories, 0)
    assert gens, f"no checkpoint under {ckpt.directory(topics.trajectories, 0)}"
    assert gens[-1][1].parent == d.base_dir / "_checkpoints" / d.group_id / f"{topics.trajectories}-0"
    restored = ckpt.restore(topics.trajectories, 0, cfg)
    assert restored.path == gens[-1][1] and not restored.skipped
    state = restored.state
    committed = kafka.committed(d.group_id, topics.trajectories, 0)
    assert committed == state.next_offset, f"committed {committed} != checkpoint next_offset {state.next_offset}"
    # Every record is valid and distinct, so the checkpointed state learned exactly next_offset records.
    learned = state.learners["default"].counters.learned
    assert learned == state.next_offset
    if "evaluation in flight abandoned at shutdown" in d.log_tail():
        assert state.next_offset <= N  # allowed: that partition replays from its previous checkpoint
    elif streaming_finished:
        assert state.next_offset == N
    else:
        assert processed_before <= state.next_offset <= N

    # A restart resumes from there: everything is learned once (a replay from an older offset would count
    # duplicates, a skip would learn fewer).
    d.start().wait_ready()
    assert d.status()["partitions"]["0"]["next_offset"] >= state.next_offset
    d.wait_consumed({0: N}, timeout=120)
    router = d.router()
    assert router is not None
    assert (router["trajectories_learned"], router["duplicates"], router["invalid"]) == (N, 0, 0)
    assert d.stop(timeout=15) == 0
    assert kafka.committed(d.group_id, topics.trajectories, 0) == N
