"""An agent that explores little is judged once its evidence is large enough for its importance weights.

river's image segments as a bandit (7 routes), logged by an agent that sends 90 % of tasks to one route and
spreads 10 % over all seven: the routes a learned challenger prefers were logged at 1/70. Through the real
broker and daemon, a look every 1,000 trajectories: while the evidence holds fewer than 100 trajectories
per unit of that weight the look says so and waits (the logged weight is a hair above 70, so the look at
7,000 still waits); at 8,000 the weight is carried and the clearly better challenger is promoted (in
process: bounds [0.40, 0.65] on +0.53).
"""

from __future__ import annotations

import pytest
from bench_modules import bench_module
from kafka_harness import DaemonFactory, KafkaIO, Producer, Topics, evaluation_events

pytestmark = pytest.mark.e2e

N = 9_000
THRESHOLD = 1_000


def test_an_agent_exploring_little_is_promoted_once_the_evidence_carries_its_weights(
        kafka: KafkaIO, daemons: DaemonFactory, producer: Producer) -> None:
    with bench_module("quality.py") as q:
        w = q.classes_workload("segment", 1, share=0.9)
        rows = list(w.stream(N))
    router = rows[0]["router_id"]
    topics = Topics.unique("thin")
    kafka.create_topics(topics)
    reader = kafka.events(topics.router_events)
    d = daemons.new("thin", topics, env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": str(THRESHOLD)})
    d.wait_ready()

    producer.send_trajectories(topics.trajectories, rows)
    d.wait_consumed({0: N}, timeout=240)
    events = reader.wait_events(
        lambda es: es if any(e["type"] == "router.promoted" for e in evaluation_events(es))
        or len(evaluation_events(es)) >= N // THRESHOLD else None, 120, "a promotion or every look")
    evals = [e for e in evaluation_events(events) if e["router_id"] == router]
    promoted = [e for e in evals if e["type"] == "router.promoted"]
    assert promoted, [(e["benchmark"]["task_count"], e.get("reasons", [])[:1]) for e in evals]
    first = promoted[0]
    weight = first["benchmark"]["diagnostics"]["max_weight"]
    assert weight == pytest.approx(70.0) and first["benchmark"]["task_count"] >= 100 * weight
    assert first["benchmark"]["deltas"]["reward"]["ci_low"] > 0.2
    # before that, the heavy weight held looks back, with the limit the evidence had reached
    held = [e for e in evals if any("importance weight 70.0 > max" in r for r in e.get("reasons", []))]
    assert held and all(e["type"] == "router.rejected" and e["verdict"] == "inconclusive" for e in held)
    for e in held:
        n = e["benchmark"]["task_count"]
        assert n <= 100 * weight  # at 7,000 the limit is 70 and the weight 70.00000000000001
        assert f"importance weight 70.0 > max {max(50.0, n / 100):g}" in " ".join(e["reasons"])
