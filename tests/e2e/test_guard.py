"""The post-promotion guard rolls a disappointing version back by itself, with its audit."""

from __future__ import annotations

from typing import Any

import pytest
from kafka_harness import ALWAYS_PROMOTE, DaemonFactory, KafkaIO, Producer, Topics, evaluation_events

from memabrad.sim import Simulator
from memabrad.store.versions import RouterVersionStore

pytestmark = pytest.mark.e2e


def _served_by(rows: list[dict[str, Any]], version: str, reward: float) -> list[dict[str, Any]]:
    """Live trajectories the agent routed greedily with ``version``, all ending with ``reward``."""
    out = []
    for r in rows:
        r = {**r, "decision": {**r["decision"], "router_version": version, "propensity": 0.9},
             "outcome": {**r["outcome"], "reward": reward}}
        out.append(r)
    return out


def test_guard_rolls_back_a_version_whose_live_reward_falls(kafka: KafkaIO, daemons: DaemonFactory,
                                                            producer: Producer) -> None:
    topics = Topics.unique("guard")
    kafka.create_topics(topics)
    events = kafka.events(topics.router_events)
    d = daemons.new("guard", topics, env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": "1000",
                                          "MEMABRAD_GUARD__MIN_TRAJECTORIES": "200", **ALWAYS_PROMOTE}).wait_ready()
    sim = Simulator(seed=81)
    producer.send_trajectories(topics.trajectories, sim.generate(2000))
    promoted = events.wait_events(
        lambda evs: [e for e in evaluation_events(evs) if e["type"] == "router.promoted"][1:], 90,
        "two promotions")
    version, prior = promoted[-1]["version_id"], promoted[-1]["previous_version_id"]
    d.wait_consumed({0: 2000}, timeout=60)

    # Fewer than min_new_trajectories more, so no evaluation interferes: the new version serves badly.
    producer.send_trajectories(topics.trajectories, _served_by(sim.generate(300), version, reward=0.0))
    rolled = events.wait_events(lambda evs: [e for e in evs if e["type"] == "router.rolled_back"], 60,
                                "the guard's rollback")
    assert len(rolled) == 1
    ev = rolled[0]
    assert (ev["trigger"], ev["version_id"], ev["previous_version_id"]) == ("guard", prior, version)
    assert ev["reason"].startswith("live reward")
    current = RouterVersionStore(d.base_dir, "default").get_current()
    assert current is not None
    assert (current["version_id"], current["rollback_from"]) == (prior, version)
    assert current["history"][-1]["trigger"] == "guard"
    m = d.metrics()
    assert m.value("memabrad_rollbacks_total", router_id="default", trigger="guard") == 1
    assert m.value("memabrad_active_router_info", router_id="default", version_id=prior) == 1
    assert d.router()["active_version"] == prior  # type: ignore[index]
