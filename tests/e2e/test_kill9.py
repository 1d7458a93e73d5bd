"""kill -9 at random moments: nothing lost, nothing learned twice, the same decisions as an uninterrupted run."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from kafka_harness import DaemonFactory, DaemonProcess, EventReader, KafkaIO, Producer, Topics, evaluation_events

from memabrad.learning.router import MODEL_FILE
from memabrad.sim import Simulator
from memabrad.store import RouterVersionStore

pytestmark = pytest.mark.e2e

N = 50_000
N_DUPLICATES = 1_000
THRESHOLD = 5_000
KILLS = 3
SEED = 0  # with this seed the reference run promotes at least once (asserted below)
ENV = {"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": str(THRESHOLD)}


def stream_with_duplicates(rng: random.Random) -> list[dict[str, Any]]:
    """N distinct trajectories, plus N_DUPLICATES re-sent ids, each somewhere after its original."""
    rows = Simulator(seed=SEED).generate(N)
    after: dict[int, list[dict[str, Any]]] = {}
    for i in rng.sample(range(N - 1), N_DUPLICATES):
        after.setdefault(rng.randrange(i + 1, N), []).append(rows[i])
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        out.append(row)
        out.extend(after.get(i, []))
    return out


def outcome(base: Path, reader: EventReader) -> dict[str, Any]:
    """What a run decided: versions (model sha256, in order), report verdicts, evaluation events."""
    store = RouterVersionStore(base, "default")
    versions = sorted(store.list_versions(), key=lambda m: m.version_id)
    reports = sorted(store.list_reports(), key=lambda r: r["report_id"])
    events = sorted(evaluation_events(reader.events()), key=lambda e: e["report_id"])
    return {
        "versions": [(m.files[MODEL_FILE], m.report_id) for m in versions],
        "verdicts": [(r["report_id"], r["verdict"], r["outcome"]) for r in reports],
        "events": [(e["event_id"], e["type"], e["report_id"], e.get("verdict")) for e in events],
        "active_report": (store.get_current() or {}).get("report_id"),
    }


def finish(d: DaemonProcess, reader: EventReader, total: int, n_evals: int = N // THRESHOLD) -> dict[str, Any]:
    """Wait until every record is consumed and every evaluation published; returns /status."""
    status = d.wait_consumed({0: total}, timeout=300)
    reader.wait_events(lambda es: len(evaluation_events(es)) >= n_evals, 60, f"{n_evals} evaluation events")
    return status


def test_kill9_same_decisions_as_uninterrupted_run(kafka: KafkaIO, daemons: DaemonFactory,
                                                   producer: Producer) -> None:
    rng = random.Random(1234)
    stream = stream_with_duplicates(rng)
    total = len(stream)
    kill_at = sorted(rng.sample(range(3_000, total - 6_000), KILLS))

    # Reference: the same stream, uninterrupted, on its own topics, base dir and group (runs alongside).
    ref_topics, topics = Topics.unique("kill9-ref"), Topics.unique("kill9")
    kafka.create_topics(ref_topics)
    kafka.create_topics(topics)
    ref_reader, reader = kafka.events(ref_topics.router_events), kafka.events(topics.router_events)
    ref = daemons.new("kill9-ref", ref_topics, env=ENV)
    d = daemons.new("kill9", topics, env=ENV)
    ref.wait_ready()
    d.wait_ready()
    producer.send_trajectories(ref_topics.trajectories, stream)

    # The crash run: the stream flows in at about the daemon's pace while it is killed three times.
    streaming = producer.stream_trajectories(topics.trajectories, stream, chunk=500, pause_s=0.4)
    for target in kill_at:
        d.wait_status(lambda s, t=target: (s["partitions"].get("0", {}).get("next_offset") or 0) >= t, 300,
                      f"{target} records processed before kill -9")
        d.kill9()
        d.start().wait_ready()
    assert streaming.result(300) == total

    status = finish(d, reader, total)
    ref_status = finish(ref, ref_reader, total)
    for s in (status, ref_status):
        router = s["routers"]["default"]
        assert (router["trajectories_learned"], router["duplicates"], router["invalid"]) == (N, N_DUPLICATES, 0)
        assert s["partitions"]["0"]["next_offset"] == total

    expected, got = outcome(ref.base_dir, ref_reader), outcome(d.base_dir, reader)
    assert expected["versions"], "the reference run promoted nothing: the comparison would be weak"
    assert len(expected["verdicts"]) == N // THRESHOLD
    assert got["versions"] == expected["versions"]
    assert got["verdicts"] == expected["verdicts"]
    assert got["events"] == expected["events"]
    assert got["active_report"] == expected["active_report"]
    assert d.stop() == 0 and ref.stop() == 0

