"""RouterFollower against the real daemon: promotions and rollbacks served within a second, corrupt versions refused.

Each test closes the loop the way an agent does: the follower chooses (with exploration),
the simulator's world plays the outcome, the producer emits the trajectory, the daemon
learns and promotes, and the follower swaps the new version in.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import pytest
from kafka_harness import PROMOTE_EVERY, DaemonProcess, publish
from polling import until

from memabrad.sdk import CaseLookup, RouterFollower, TrajectoryProducer
from memabrad.sim import DEFAULT_ROUTES, ContextStream, default_world
from memabrad.store.versions import RouterVersionStore
from memabrad.wire.events import Benchmark, GateResult, PolicyMetrics, RouterPromoted, event_to_bytes, make_event_id

pytestmark = pytest.mark.e2e

SWAP_BUDGET_S = 1.0
PROMOTION_TIMEOUT_S = 60.0


class Agent:
    """The app under test: a follower choosing, the simulated world answering, a producer emitting."""

    def __init__(self, daemon: DaemonProcess, router_id: str, seed: int) -> None:
        self.daemon = daemon
        self.router_id = router_id
        self.follower = self.new_follower()
        self.producer = TrajectoryProducer(daemon.bootstrap_servers, topic=daemon.topics.trajectories, linger_ms=5)
        self.world = default_world()
        self.contexts = ContextStream(self.world, DEFAULT_ROUTES, seed)
        self.rng = random.Random(seed)
        self.inputs: list[str] = []

    def new_follower(self) -> RouterFollower:
        # No store polling: every swap here must come from an event.
        return RouterFollower(self.daemon.base_dir, self.router_id, bootstrap_servers=self.daemon.bootstrap_servers,
                              topic=self.daemon.topics.router_events, epsilon=0.2, rng=1, poll_interval_s=None)

    async def __aenter__(self) -> Agent:
        await self.producer.start()
        await self.follower.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.follower.stop()
        await self.producer.stop()

    async def work(self, n: int = PROMOTE_EVERY) -> None:
        """Route, play and emit ``n`` tasks (exactly one evaluation's worth by default)."""
        for _ in range(n):
            task, candidates, ctx = self.contexts.next()
            decision = self.follower.choose(task, candidates)
            outcome = self.world.sample_outcome(ctx, decision.route, self.rng)
            await self.producer.send(self.follower.make_trajectory(task, candidates, decision, outcome))
            self.inputs.append(task["input"])
        await self.producer.flush(timeout=30)

    async def next_version(self, after: str | None) -> str:
        """Emit one evaluation's worth of trajectories and wait for the follower to serve the promoted version."""
        await self.work()
        await until(lambda: self.follower.version_id not in (None, after), PROMOTION_TIMEOUT_S,
                    f"a promotion after {after} for {self.router_id}")
        version = self.follower.version_id
        assert version is not None
        return version


def _assert_fast_swap(follower: RouterFollower, version: str, cause: str) -> None:
    swap = follower.swaps[-1]
    assert (swap.version_id, swap.cause) == (version, cause)
    assert swap.event_id is not None and swap.latency_s is not None
    assert swap.latency_s < SWAP_BUDGET_S, f"served {swap.latency_s:.3f}s after the event was published"
    assert swap.swapped_at - swap.received_at < SWAP_BUDGET_S


async def test_a_promotion_is_served_within_a_second(daemon: DaemonProcess) -> None:
    rid = f"sdk-promote-{uuid.uuid4().hex[:6]}"
    async with Agent(daemon, rid, seed=1) as agent:
        follower = agent.follower
        assert follower.version_id is None  # nothing promoted yet: the untrained router serves and explores
        version = await agent.next_version(after=None)
        _assert_fast_swap(follower, version, "router.promoted")
        assert RouterVersionStore(daemon.base_dir, rid).active_version_id() == version
        task, candidates, _ = agent.contexts.next()
        assert follower.choose(task, candidates).router_version == version
        # The daemon persists the case index beside the versions; the app can ask it what worked.
        cases = CaseLookup(daemon.base_dir, rid, check_interval_s=0)
        match = await until(lambda: cases.lookup(agent.inputs[0]), 10.0, "the persisted case index")
        assert match.case.route in DEFAULT_ROUTES and match.similarity > 0.89


async def test_a_rollback_is_served_within_a_second(daemon: DaemonProcess) -> None:
    rid = f"sdk-rollback-{uuid.uuid4().hex[:6]}"
    async with Agent(daemon, rid, seed=2) as agent:
        v1 = await agent.next_version(after=None)
        v2 = await agent.next_version(after=v1)
        late = agent.new_follower()  # started after both promotions: loads the active version from the store
        await late.start()
        try:
            assert late.version_id == v2 and late.swaps[-1].cause == "start"
            command = {"schema_version": 1, "command": "rollback", "request_id": f"sdk-{uuid.uuid4().hex}",
                       "router_id": rid, "version_id": v1,
                       "issued_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "requested_by": "tests/sdk", "reason": "rollback test"}
            await publish(daemon.bootstrap_servers, daemon.topics.admin, rid, json.dumps(command).encode())
            for follower in (agent.follower, late):
                assert await follower.wait_for_version(v1, timeout=30) == v1
                _assert_fast_swap(follower, v1, "router.rolled_back")
                assert follower.swaps[-1].previous_version_id == v2
        finally:
            await late.stop()


def _forged_promotion(router_id: str, version_id: str, previous: str) -> RouterPromoted:
    gate = GateResult(value=0.1, threshold=0.0, passed=True)
    metrics = PolicyMetrics(reward=0.5, error_rate=0.0, latency_ms=100.0)
    return RouterPromoted(
        event_id=make_event_id(router_id, "router.promoted", f"forged-{uuid.uuid4().hex}"), router_id=router_id,
        occurred_at=datetime.now(UTC), report_id="forged", version_id=version_id, previous_version_id=previous,
        gates={name: gate for name in ("reward_delta", "error_rate_delta", "latency_delta_ms", "task_count")},
        benchmark=Benchmark(task_count=1, estimator="dr", baseline=metrics, challenger=metrics))


async def test_a_tampered_version_is_refused_and_the_old_one_keeps_serving(daemon: DaemonProcess) -> None:
    rid = f"sdk-corrupt-{uuid.uuid4().hex[:6]}"
    async with Agent(daemon, rid, seed=3) as agent:
        follower = agent.follower
        v1 = await agent.next_version(after=None)
        v2 = await agent.next_version(after=v1)
        model = RouterVersionStore(daemon.base_dir, rid).version_dir(v1) / "model.json"
        model.write_bytes(model.read_bytes().replace(b'"reward_n":', b'"reward_n": ', 1))  # same model, other bytes
        event = _forged_promotion(rid, v1, v2)
        await publish(daemon.bootstrap_servers, daemon.topics.router_events, rid, event_to_bytes(event))
        await until(lambda: follower.load_failures, 10.0, "the forged promotion to be refused")
        assert follower.version_id == v2 and follower.swaps[-1].version_id == v2
        task, candidates, _ = agent.contexts.next()
        assert follower.choose(task, candidates).router_version == v2
        failure = follower.failures[-1]
        assert (failure.version_id, failure.event_id, failure.cause) == (v1, event.event_id, "router.promoted")
        assert "sha256" in (follower.last_error or "")
        # The same event again (a re-publication) is recognised by its id and not retried.
        await publish(daemon.bootstrap_servers, daemon.topics.router_events, rid, event_to_bytes(event))
        await until(lambda: follower.duplicate_events, 10.0, "the duplicate event to be seen")
        assert follower.load_failures == 1 and follower.version_id == v2
