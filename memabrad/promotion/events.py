"""Router events derived from saved training reports.

The event is built from the report alone (id, time, gates, benchmark), so an
evaluation re-run after a crash — which finds its report already saved — publishes
a byte-identical event with the same ``event_id``.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from memabrad.promotion.report import TrainingReport
from memabrad.wire.events import (
    RouterEvaluated,
    RouterEventBase,
    RouterPromoted,
    RouterRejected,
    RouterRolledBack,
    make_event_id,
)

OUTCOME_EVENT = {
    "promoted": "router.promoted",
    "rejected": "router.rejected",
    "inconclusive": "router.rejected",
    "dry_run": "router.evaluated",
}


def evaluation_event(report: TrainingReport) -> RouterEventBase:
    """``router.promoted`` / ``router.rejected`` / ``router.evaluated`` for a training report."""
    kind = OUTCOME_EVENT[report.outcome]
    common: dict[str, Any] = {
        "event_id": make_event_id(report.router_id, kind, report.report_id),
        "router_id": report.router_id,
        "occurred_at": report.created_at,
        "report_id": report.report_id,
        "gates": report.gates,
        "benchmark": report.benchmark,
    }
    if kind == "router.promoted":
        if report.version_id is None:
            raise ValueError(f"report {report.report_id} is a promotion without a version")
        return RouterPromoted(**common, version_id=report.version_id, previous_version_id=report.previous_version_id)
    if kind == "router.rejected":  # the model checks the verdict is one a rejection carries
        return RouterRejected(**common, verdict=cast(Literal["reject", "inconclusive"], report.verdict),
                              reasons=list(report.reasons))
    return RouterEvaluated(**common, would_promote=report.would_promote, reasons=list(report.reasons),
                           verdict=report.verdict, paused=report.paused)


def rollback_event(router_id: str, current: dict[str, Any], *, trigger: Literal["admin", "cli", "guard"],
                   request_id: str | None,
                   requested_by: str | None, reason: str | None) -> RouterRolledBack:
    """``router.rolled_back`` from the ``current.json`` a rollback just wrote."""
    key = request_id or current["rolled_back_at"]
    return RouterRolledBack(
        event_id=make_event_id(router_id, "router.rolled_back", key),
        router_id=router_id,
        occurred_at=current["rolled_back_at"],
        version_id=current["version_id"],
        previous_version_id=current.get("rollback_from"),
        trigger=trigger,
        request_id=request_id,
        requested_by=requested_by,
        reason=reason,
    )
