"""Everything the daemon knows about one trajectory partition: the unit of checkpoint.

Producers key trajectories by ``router_id``, so every router lives on exactly one
partition and its learner, counters and duplicate memory move with that partition on
rebalance. ``next_offset`` is the first offset *not* yet reflected in this state; a
checkpoint stores it and a restart seeks there.

The post-promotion guards of the partition's routers live here too (not in the learners),
so they are checkpointed with the learning they watch; the router registry
(``daemon/routers.py``) is what arms and disarms them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from memabrad.config import Config
from memabrad.daemon.dedupe import DedupeMemory
from memabrad.learning.learner import RouterLearner
from memabrad.promotion.guard import PromotionGuard

MAX_INVALID_KEYS = 1000
MAX_REQUEST_IDS = 10_000
UNKNOWN_ROUTER = "unknown"


@dataclass
class PartitionState:
    topic: str
    partition: int
    next_offset: int | None
    dedupe: DedupeMemory
    learners: dict[str, RouterLearner] = field(default_factory=dict)
    invalid_by_router: dict[str, int] = field(default_factory=dict)
    admin_offsets: dict[int, int] = field(default_factory=dict)
    request_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)
    guards: dict[str, PromotionGuard] = field(default_factory=dict)  # armed guards, by router
    records_since_checkpoint: int = 0

    @classmethod
    def empty(cls, topic: str, partition: int, cfg: Config) -> PartitionState:
        return cls(topic, partition, None, DedupeMemory(cfg.checkpoint.dedupe_capacity))

    def learner(self, router_id: str, cfg: Config) -> RouterLearner:
        learner = self.learners.get(router_id)
        if learner is None:
            learner = self.learners[router_id] = RouterLearner.new(router_id, cfg)
        return learner

    def count_invalid(self, router_id: str) -> str:
        """Attribute an invalid record to a router (bounded: unknown keys share one bucket)."""
        if router_id not in self.invalid_by_router and len(self.invalid_by_router) >= MAX_INVALID_KEYS:
            router_id = UNKNOWN_ROUTER
        self.invalid_by_router[router_id] = self.invalid_by_router.get(router_id, 0) + 1
        return router_id

    def remember_request(self, request_id: str) -> bool:
        """False if the request id was seen before (a replay); bounded LRU memory."""
        if request_id in self.request_ids:
            return False
        self.request_ids[request_id] = None
        while len(self.request_ids) > MAX_REQUEST_IDS:
            self.request_ids.popitem(last=False)
        return True

    def routers(self) -> set[str]:
        return set(self.learners) | set(self.invalid_by_router)

    # -- checkpoint payload -----------------------------------------------------------

    def to_payload(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(JSON document, numpy arrays) of this partition's state."""
        doc = {
            "format": "memabrad.partition/v1",
            "topic": self.topic,
            "partition": self.partition,
            "next_offset": self.next_offset,
            "invalid_by_router": dict(self.invalid_by_router),
            "admin_offsets": {str(k): v for k, v in self.admin_offsets.items()},
            "request_ids": list(self.request_ids),
            "learners": {rid: learner.to_state() for rid, learner in sorted(self.learners.items())},
            "guards": {rid: g.to_state() for rid, g in sorted(self.guards.items()) if g.armed},
        }
        return doc, self.dedupe.to_arrays()

    @classmethod
    def from_payload(cls, doc: dict[str, Any], arrays: dict[str, Any], cfg: Config) -> PartitionState:
        if doc.get("format") != "memabrad.partition/v1":
            raise ValueError("not a memabrad partition checkpoint")
        return cls(
            topic=doc["topic"],
            partition=int(doc["partition"]),
            next_offset=doc["next_offset"],
            dedupe=DedupeMemory.from_arrays(arrays, cfg.checkpoint.dedupe_capacity),
            learners={rid: RouterLearner.from_state(s, cfg) for rid, s in doc["learners"].items()},
            invalid_by_router={k: int(v) for k, v in doc["invalid_by_router"].items()},
            admin_offsets={int(k): int(v) for k, v in doc["admin_offsets"].items()},
            request_ids=OrderedDict((r, None) for r in doc["request_ids"]),
            guards=_guards_of(doc),
        )


def _guards_of(doc: dict[str, Any]) -> dict[str, PromotionGuard]:
    """Armed guards of a checkpoint document; one written before the guards had their own key
    kept each guard inside its learner's state, under ``"guard"``."""
    old = "guards" not in doc
    states = {rid: s.get("guard") for rid, s in doc["learners"].items()} if old else doc["guards"]
    guards = {rid: PromotionGuard.from_state(s) for rid, s in states.items() if s}
    return {rid: g for rid, g in guards.items() if g.armed}
