"""One evaluation end to end: benchmark, decide, and apply the decision to the store.

``evaluate`` is pure CPU work on a frozen snapshot (safe in a worker thread);
``apply_evaluation`` does the store writes in the order the guarantees need: the
version (idempotent by report id), then the training report, then ``current.json``.
A crash between any two steps is repaired by running the same evaluation again, which
yields the same report id and so the same version. Both ``memabrad cycle`` and the
daemon call these two functions: there is one promotion path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from memabrad.evaluation.benchmark import SuiteItem
from memabrad.evaluation.compare import BenchmarkResult, compare
from memabrad.evaluation.sequential import SequentialSettings, stream_results
from memabrad.evaluation.window_arrays import WindowArrays
from memabrad.learning.portfolio import member_confidence
from memabrad.learning.progressive import ProgressiveEvidence
from memabrad.learning.router import Router
from memabrad.learning.snapshot import LearnerSnapshot
from memabrad.promotion.policy import PolicySettings, PromotionDecision, PromotionPolicy
from memabrad.promotion.report import TrainingReport
from memabrad.store.versions import RouterVersionStore


@dataclass(frozen=True)
class Evaluation:
    snapshot: LearnerSnapshot
    baseline_version_id: str | None
    baseline_pinned: bool
    result: BenchmarkResult
    decision: PromotionDecision
    settings: PolicySettings

    @property
    def report_id(self) -> str:
        return self.snapshot.report_id


@dataclass(frozen=True)
class AppliedEvaluation:
    """What changed in the store, and the training report that says why."""

    evaluation: Evaluation
    report: TrainingReport
    version_id: str | None
    previous_version_id: str | None

    @property
    def outcome(self) -> str:
        """``promoted``, ``rejected``, ``inconclusive`` or ``dry_run`` (the metric label)."""
        return self.evaluation.decision.action


def evaluate(
    snapshot: LearnerSnapshot,
    baseline: Router | None,
    settings: PolicySettings,
    *,
    suite: Sequence[SuiteItem] = (),
    estimator: str = "auto",
    confidence: float = 0.95,
    dry_run: bool = False,
    paused: bool = False,
    baseline_pinned: bool = False,
    arrays: WindowArrays | None = None,
) -> Evaluation:
    """Benchmark the snapshot's challenger against ``baseline`` (None: the logging policy) and decide.

    A challenger chosen among a portfolio's M members is judged at ``alpha / M``. ``arrays``: the
    router's window arrays from its last look (see ``evaluation/window_arrays.py``)."""
    confidence = member_confidence(confidence, snapshot.portfolio_size)
    result = compare(
        snapshot.challenger,
        baseline,
        snapshot.window,
        suite,
        estimator=estimator,
        confidence=confidence,
        supported_routes=set(snapshot.supported_routes),
        arrays=arrays,
    )
    policy = PromotionPolicy(settings)
    if settings.method == "progressive" and settings.mode == "statistical":  # point mode: the seed's judgement
        result, decision = decide_streams(policy, _progressive(snapshot, baseline, settings, confidence, result),
                                          dry_run=dry_run, paused=paused)
    else:
        decision = policy.decide(result, dry_run=dry_run, paused=paused)
    return Evaluation(snapshot, baseline.version_id if baseline else None, baseline_pinned, result, decision,
                      settings)


def decide_streams(policy: PromotionPolicy, results: Sequence[BenchmarkResult], *, dry_run: bool = False,
                   paused: bool = False) -> tuple[BenchmarkResult, PromotionDecision]:
    """The first stream whose gates all pass (each at its share of alpha), else the whole evidence's verdict."""
    judged = [(r, policy.decide(r, dry_run=dry_run, paused=paused)) for r in results]
    return next(((r, d) for r, d in judged if d.verdict == "promote"), judged[0])


def _progressive(snapshot: LearnerSnapshot, baseline: Router | None, settings: PolicySettings, confidence: float,
                 holdout: BenchmarkResult) -> list[BenchmarkResult]:
    """The progressive evidence's streams as results (the whole evidence first); the hold-out
    comparison rides along as the veto."""
    evidence = snapshot.progressive
    baseline_id = baseline.version_id if baseline is not None else None
    if evidence.baseline_version_id != baseline_id:  # gathered against another baseline: none of it counts
        evidence = ProgressiveEvidence(baseline_version_id=baseline_id, looks=evidence.looks)
    return stream_results(
        evidence, SequentialSettings(confidence, settings.target_n), min_trajectories=settings.required_task_count,
        challenger_name=holdout.challenger.name, baseline_name=holdout.baseline.name, holdout=holdout,
        members=snapshot.portfolio_size, member=snapshot.member if snapshot.portfolio else None,
    )


def build_report(ev: Evaluation, *, version_id: str | None, previous_version_id: str | None,
                 created_at: datetime | None = None) -> TrainingReport:
    """The training report: verdict, gates, benchmark, and the evidence behind them."""
    d = ev.decision
    when = (created_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return TrainingReport(
        report_id=ev.report_id,
        router_id=ev.snapshot.router_id,
        created_at=when,
        evaluation_sequence=ev.snapshot.sequence,
        verdict=d.verdict,
        outcome=d.action,
        would_promote=d.would_promote,
        dry_run=d.dry_run or d.paused,
        paused=d.paused,
        version_id=version_id,
        previous_version_id=previous_version_id,
        baseline_version_id=ev.baseline_version_id,
        baseline_pinned=ev.baseline_pinned,
        reasons=tuple(d.reasons),
        estimator_health=tuple(d.health),
        gates=d.gates_dict(),
        benchmark=ev.result.to_dict(),
        gate_config_hash=d.gate_config_hash,
        gate_config=dict(ev.settings.__dict__),
        evidence=ev.snapshot.evidence(),
    )


def apply_evaluation(store: RouterVersionStore, ev: Evaluation, source: str) -> AppliedEvaluation:
    """Save version (if promoted), report and ``current.json``, in crash-safe order."""
    current = store.get_current()
    previous = current["version_id"] if current else None
    version_id: str | None = None
    if ev.decision.action == "promoted":
        meta = store.save_version(
            ev.snapshot.challenger.version_files(),
            report_id=ev.report_id,
            idempotency_key=ev.report_id,
            extra={"trained_total": ev.snapshot.trained_total,
                   "challenger_sha256": ev.snapshot.challenger_sha256},
        )
        version_id = meta.version_id
        if previous == version_id:  # re-run after a crash that had already activated it
            previous = current.get("prior_version_id") if current else None
    report = build_report(ev, version_id=version_id, previous_version_id=previous)
    store.save_report(report.to_dict())
    if version_id is not None and (current is None or current.get("version_id") != version_id):
        store.activate(version_id, source=source, benchmark=_summary(ev.result), report_id=ev.report_id)
    return AppliedEvaluation(ev, report, version_id, previous)


def _summary(result: BenchmarkResult) -> dict[str, Any]:
    b = result.to_dict()
    return {k: b[k] for k in ("task_count", "estimator", "baseline", "challenger", "deltas")}
