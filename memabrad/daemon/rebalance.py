"""What a consumer-group rebalance does to this instance.

Revoked partitions are checkpointed and committed within ``REBALANCE_BUDGET_S`` (past
it the new owner replays from the previous checkpoint: safe, only slower), then their
states and routers are let go. Assigned partitions are restored from their checkpoints
and sought there, and their routers taken (daemon lock, active version, baseline) before
any record of theirs is learned.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
from aiokafka import ConsumerRebalanceListener, TopicPartition

from memabrad.daemon.metrics import DaemonMetrics
from memabrad.daemon.partition import UNKNOWN_ROUTER, PartitionState
from memabrad.daemon.positions import Positions

log = logging.getLogger("memabrad.daemon")
REBALANCE_BUDGET_S = 8.0

Checkpoint = Callable[[list[PartitionState], str], Awaitable[bool]]


class HeldRouters(Protocol):
    async def hold(self, router_id: str, state: PartitionState) -> None: ...

    def release(self, router_id: str) -> None: ...


class RouterGauges(Protocol):
    def forget(self, router_id: str) -> None: ...


class AdminPositions(Protocol):
    async def prepare(self) -> None: ...


class Rebalance(ConsumerRebalanceListener):
    """The group's listener. A step that fails is kept in ``failure`` for the consume loop, which
    turns it into a fatal error (aiokafka would otherwise only log it and go on)."""

    def __init__(self, metrics: DaemonMetrics, positions: Positions, routers: HeldRouters, gauges: RouterGauges,
                 admin: AdminPositions, state_lock: anyio.Lock, checkpoint: Checkpoint,
                 ready: Callable[[], bool]) -> None:
        self.metrics = metrics
        self.positions = positions
        self.routers = routers
        self.gauges = gauges
        self.admin = admin
        self.state_lock = state_lock
        self.checkpoint = checkpoint
        self.ready = ready
        self.assigned = False
        self.failure: BaseException | None = None

    async def on_partitions_revoked(self, revoked: Any) -> None:
        try:
            await self.revoke(set(revoked))
        except BaseException as err:
            self.failure = err
            raise

    async def on_partitions_assigned(self, assigned: Any) -> None:
        try:
            await self.assign(set(assigned))
        except BaseException as err:
            self.failure = err
            raise

    async def revoke(self, revoked: set[TopicPartition]) -> None:
        self.assigned = False
        self.metrics.ready.set(0)
        states = self.positions.owned(revoked)
        if not states:
            return
        partitions = [s.partition for s in states]
        with anyio.move_on_after(REBALANCE_BUDGET_S) as scope:
            await self.checkpoint(states, "revoke")
        if scope.cancelled_caught:
            log.error("revoke checkpoint exceeded its budget; the new owner replays from the previous checkpoint",
                      extra={"partitions": partitions})
        async with self.state_lock:
            for state in self.positions.drop(revoked):
                for rid in state.routers():
                    self.routers.release(rid)
                    self.gauges.forget(rid)
        log.info("partitions revoked", extra={"partitions": partitions})

    async def assign(self, assigned: set[TopicPartition]) -> None:
        async with self.state_lock:
            for state in await self.positions.assign(assigned):
                for rid in state.routers():
                    if rid == UNKNOWN_ROUTER:
                        continue
                    await self.routers.hold(rid, state)
                    learner = state.learners.get(rid)
                    if learner is not None:
                        self.metrics.since_evaluation.labels(rid).set(learner.counters.since_evaluation)
        await self.admin.prepare()
        # The restored state (cases, benchmark window, models) lives as long as the assignment: keep
        # it out of the collector's full passes, which would otherwise walk it every few seconds and
        # hold the GIL (and the event loop) while they do. Refcounting still frees it when dropped.
        gc.freeze()
        self.assigned = True
        self.metrics.ready.set(1 if self.ready() else 0)
        log.info("partitions assigned", extra={"partitions": sorted(tp.partition for tp in assigned)})
