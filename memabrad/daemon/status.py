"""``GET /status``: what the daemon knows about its partitions and routers, as one JSON document.

Built on the event loop from in-memory state; only a router never evaluated by this process
reads its newest report from the store (once — the answer is remembered).
"""

from __future__ import annotations

from typing import Any, Protocol

from memabrad.daemon.partition import PartitionState
from memabrad.store.versions import RouterVersionStore

_LAST_KEYS = ("report_id", "verdict", "outcome", "created_at", "version_id")


class PartitionStates(Protocol):
    states: dict[tuple[str, int], PartitionState]


class ActiveVersions(Protocol):
    def active(self, router_id: str) -> str | None: ...

    def store(self, router_id: str) -> RouterVersionStore: ...


class EvaluationProgress(Protocol):
    last_evaluation: dict[str, dict[str, Any]]

    def pending_count(self) -> int: ...


class StatusView:
    def __init__(self, partitions: PartitionStates, routers: ActiveVersions, evaluations: EvaluationProgress) -> None:
        self.partitions = partitions
        self.routers = routers
        self.evaluations = evaluations
        self._from_store: dict[str, dict[str, Any]] = {}

    def build(self, ready: bool) -> dict[str, Any]:
        states = self.partitions.states
        routers: dict[str, Any] = {}
        for state in list(states.values()):
            for rid in sorted(state.routers()):
                learner = state.learners.get(rid)
                c = learner.counters if learner else None
                routers[rid] = {
                    "active_version": self.routers.active(rid),
                    "trajectories_learned": c.learned if c else 0,
                    "duplicates": c.duplicates if c else 0,
                    "invalid": state.invalid_by_router.get(rid, 0),
                    "since_evaluation": c.since_evaluation if c else 0,
                    "evaluations": c.evaluations if c else 0,
                    "last_evaluation": self.evaluations.last_evaluation.get(rid) or self._last_report(rid),
                    "partition": state.partition,
                }
        return {
            "ready": ready,
            "routers": routers,
            "partitions": {str(p): {"next_offset": s.next_offset} for (_, p), s in sorted(states.items())},
            "evaluations_pending": self.evaluations.pending_count(),
        }

    def _last_report(self, router_id: str) -> dict[str, Any] | None:
        """The newest saved report, for a router this process has not evaluated yet."""
        cached = self._from_store.get(router_id)
        if cached is not None:
            return cached
        try:
            report = self.routers.store(router_id).last_report()
        except Exception:  # noqa: BLE001
            return None
        if report is None:
            return None
        last = self._from_store[router_id] = {k: report.get(k) for k in _LAST_KEYS}
        return last
