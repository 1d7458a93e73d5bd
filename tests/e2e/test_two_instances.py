"""Two instances in one group split the routers; after one is killed the other takes over, losing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka_harness import DaemonFactory, DaemonProcess, KafkaIO, Producer, Topics
from polling import wait_until

from memabrad.daemon.checkpoint import CheckpointStore
from memabrad.kafka.client import partition_for_key
from memabrad.sim import Simulator

pytestmark = pytest.mark.e2e

PARTITIONS = 4
N_PHASE1 = 400
N_PHASE2 = 300


def routers_on_distinct_partitions() -> dict[str, int]:
    """Four router ids that Kafka's default partitioner puts on four different partitions."""
    chosen: dict[int, str] = {}
    i = 0
    while len(chosen) < PARTITIONS:
        rid = f"router-{i}"
        chosen.setdefault(partition_for_key(rid, PARTITIONS), rid)
        i += 1
    return {rid: p for p, rid in chosen.items()}


def owned_partitions(d: DaemonProcess) -> set[int]:
    return {int(p) for p in d.status()["partitions"]}


def test_two_instances_split_and_take_over(kafka: KafkaIO, daemons: DaemonFactory, producer: Producer,
                                           tmp_path: Path) -> None:
    topics = Topics.unique("pair")
    kafka.create_topics(topics, trajectory_partitions=PARTITIONS)
    routers = routers_on_distinct_partitions()
    sims = {rid: Simulator(seed=40 + i, router_id=rid) for i, rid in enumerate(routers)}
    base, group = tmp_path / "shared-base", "e2e-pair"
    env = {"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": "100000"}
    a = daemons.new("pair-a", topics, base_dir=base, group_id=group, env=env)
    b = daemons.new("pair-b", topics, base_dir=base, group_id=group, env=env)
    a.wait_ready()
    b.wait_ready()

    def split() -> tuple[set[int], set[int]] | None:
        pa, pb = owned_partitions(a), owned_partitions(b)
        ok = pa and pb and not pa & pb and pa | pb == set(range(PARTITIONS)) and a.is_ready() and b.is_ready()
        return (pa, pb) if ok else None

    wait_until(split, 90, "both instances to own partitions, disjoint, covering all")

    # Traffic: each router is served by exactly one instance.
    producer.send_trajectories(topics.trajectories, [r for s in sims.values() for r in s.generate(N_PHASE1)])
    sent = dict.fromkeys(routers, N_PHASE1)

    def learned_everywhere() -> tuple[dict[str, Any], dict[str, Any]] | None:
        ra, rb = a.status()["routers"], b.status()["routers"]
        both = {**ra, **rb}
        if set(both) != set(routers) or any(both[r]["trajectories_learned"] != n for r, n in sent.items()):
            return None
        return ra, rb

    ra, rb = wait_until(learned_everywhere, 90, "every router learned by an instance")
    assert not set(ra) & set(rb), f"routers served twice: {set(ra) & set(rb)}"
    assert set(ra) | set(rb) == set(routers)
    assert ra and rb, "one instance serves every router"
    for rid, p in routers.items():
        owner = a if rid in ra else b
        assert p in owned_partitions(owner), f"{rid} (partition {p}) served by {owner.name} which does not own it"

    # kill -9 one instance once its checkpoints cover phase 1: the survivor restores its routers from them.
    victim, survivor = (a, b) if ra else (b, a)
    victim_routers = set(ra if victim is a else rb)
    cfg = kafka.config(topics)
    ckpt = CheckpointStore(base, group, cfg.checkpoint.generations)
    wait_until(lambda: all(ckpt.restore(topics.trajectories, routers[r], cfg).state.next_offset == N_PHASE1
                           for r in victim_routers), 30, "the victim's checkpoints to cover phase 1")
    victim.kill9()
    survivor.wait_status(lambda s: set(s["routers"]) == set(routers) and s["ready"], 120,
                         "the survivor to serve all routers")

    producer.send_trajectories(topics.trajectories, [r for s in sims.values() for r in s.generate(N_PHASE2)])
    sent = dict.fromkeys(routers, N_PHASE1 + N_PHASE2)
    status = survivor.wait_consumed({p: sent[rid] for rid, p in routers.items()}, timeout=120)
    for rid, n in sent.items():
        r = status["routers"][rid]
        assert (r["trajectories_learned"], r["duplicates"], r["invalid"]) == (n, 0, 0), (rid, r)
        assert status["partitions"][str(routers[rid])]["next_offset"] == n
    # Taken over from the checkpoints, not replayed from the start: this process accepted only phase 2 for them.
    m = survivor.metrics()
    for rid in victim_routers:
        assert m.value("memabrad_trajectories_total", router_id=rid, result="accepted") == N_PHASE2, rid
    assert survivor.stop() == 0


def test_fresh_partitions_start_from_the_beginning(kafka: KafkaIO, daemons: DaemonFactory,
                                                   producer: Producer) -> None:
    """One daemon, a fresh group, four partitions without checkpoint or committed offset: all consumed."""
    topics = Topics.unique("fresh")
    kafka.create_topics(topics, trajectory_partitions=PARTITIONS)
    routers = routers_on_distinct_partitions()
    producer.send_trajectories(topics.trajectories, [r for i, rid in enumerate(routers)
                                                     for r in Simulator(seed=60 + i, router_id=rid).generate(200)])
    d = daemons.new("fresh", topics, env={"MEMABRAD_EVALUATION__MIN_NEW_TRAJECTORIES": "100000"})
    status = d.wait_consumed({p: 200 for p in routers.values()}, timeout=90)
    assert {rid: r["trajectories_learned"] for rid, r in status["routers"].items()} == dict.fromkeys(routers, 200)
