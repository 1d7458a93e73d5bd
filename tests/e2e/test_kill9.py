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


def stream_with_duplicates(rng: random.Random, n: int = N, n_duplicates: int = N_DUPLICATES) -> list[dict[str, Any]]:
    """``n`` distinct trajectories, plus ``n_duplicates`` re-sent ids, each somewhere after its original."""
    rows = Simulator(seed=SEED).generate(n)
    after: dict[int, list[dict[str, Any]]] = {}
    for i in rng.sample(range(n - 1), n_duplicates):
        after.setdefault(rng.randrange(i + 1, n), []).append(rows[i])
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
    run_with_kills(kafka, daemons, producer, stream, kill_at, "kill9", N, N_DUPLICATES, THRESHOLD, ENV)


PORTFOLIO_YAML = """router:
  portfolio:
    - {name: slow, learning_rate: 0.1}
    - {name: bold, pessimism: 0.0}
    - {name: careful, pessimism: 2.0, guardrail_prices: true}
"""


def test_kill9_with_a_portfolio_same_choices_as_uninterrupted_run(kafka: KafkaIO, daemons: DaemonFactory,
                                                                  producer: Producer) -> None:
    """The same with a challenger portfolio (three members, one with a model of its own, one with guardrail
    prices): the member put forward at each look, and so every version and report, equal the uninterrupted
    run's; the reports show the priced member's prices."""
    (daemons.tmp_path / "config.yaml").write_text(PORTFOLIO_YAML)  # the daemons' working directory
    n, dups, threshold = 20_000, 300, 4_000  # a look every ~2 s at full speed: promotions applied before the next
    rng = random.Random(99)
    stream = stream_with_duplicates(rng, n, dups)
    kill_at = sorted(rng.sample(range(3_000, len(stream) - 5_000), 2))
    reports = run_with_kills(kafka, daemons, producer, stream, kill_at, "kill9p", n, dups, threshold,
                             {"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": str(threshold)})
    chosen = [r["evidence"]["portfolio"]["chosen"] for r in reports]
    assert len(chosen) == n // threshold and set(chosen) <= {"main", "slow", "bold", "careful"}
    for r in reports:
        priced = {m["name"]: m.get("guardrail_prices") for m in r["evidence"]["portfolio"]["members"]}
        assert priced["careful"] is not None and priced["main"] is None and priced["slow"] is None


def run_with_kills(kafka: KafkaIO, daemons: DaemonFactory, producer: Producer, stream: list[dict[str, Any]],
                   kill_at: list[int], name: str, n: int, n_duplicates: int, threshold: int,
                   env: dict[str, str]) -> list[dict[str, Any]]:
    """One uninterrupted run and one killed at ``kill_at`` on the same stream: the same decisions. Returns
    the reports of the killed run."""
    total = len(stream)

    # Reference: the same stream, uninterrupted, on its own topics, base dir and group (runs alongside).
    ref_topics, topics = Topics.unique(f"{name}-ref"), Topics.unique(name)
    kafka.create_topics(ref_topics)
    kafka.create_topics(topics)
    ref_reader, reader = kafka.events(ref_topics.router_events), kafka.events(topics.router_events)
    ref = daemons.new(f"{name}-ref", ref_topics, env=env)
    d = daemons.new(name, topics, env=env)
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

    status = finish(d, reader, total, n // threshold)
    ref_status = finish(ref, ref_reader, total, n // threshold)
    for s in (status, ref_status):
        router = s["routers"]["default"]
        assert (router["trajectories_learned"], router["duplicates"], router["invalid"]) == (n, n_duplicates, 0)
        assert s["partitions"]["0"]["next_offset"] == total

    expected, got = outcome(ref.base_dir, ref_reader), outcome(d.base_dir, reader)
    assert expected["versions"], "the reference run promoted nothing: the comparison would be weak"
    assert len(expected["verdicts"]) == n // threshold
    assert got["versions"] == expected["versions"]
    assert got["verdicts"] == expected["verdicts"]
    assert got["events"] == expected["events"]
    assert got["active_report"] == expected["active_report"]
    assert d.stop() == 0 and ref.stop() == 0
    return sorted(RouterVersionStore(d.base_dir, "default").list_reports(), key=lambda r: r["report_id"])

