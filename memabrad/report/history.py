"""The evaluation history of routers, read from the store: reports, decisions, promotions, rollbacks.

Pure data: reads ``training-reports/*.json`` and ``router-versions/current.json`` through
:class:`~memabrad.store.versions.RouterVersionStore` and returns frozen dataclasses; writes nothing.
Reports are read defensively: a field missing from an older or unusual report is ``None``, and an
unreadable report is listed in :attr:`RouterHistory.skipped` instead of failing the whole history.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memabrad.promotion.gates import percent
from memabrad.store.errors import StoreError
from memabrad.store.versions import ROUTER_ID_RE, RouterVersionStore

__all__ = [
    "GATE_ORDER",
    "Estimate",
    "EvaluationRecord",
    "GateRecord",
    "RouterHistory",
    "VersionEvent",
    "build_histories",
    "discover_routers",
    "parse_time",
    "router_history",
]

GATE_ORDER = ("reward_delta", "error_rate_delta", "latency_delta_ms", "task_count")
"""The contract's gates, in display order; other gates (e.g. slices) follow by name."""


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 string as an aware UTC datetime, or None.

    >>> parse_time("2026-11-25T17:00:00Z").isoformat()
    '2026-11-25T17:00:00+00:00'
    >>> parse_time("yesterday") is None
    True
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _map(value: Any) -> Mapping[str, Any]:
    """``value`` where a report holds an object, else an empty one (older reports lack some parts)."""
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval (bounds None when the estimator gives none)."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None

    @classmethod
    def from_policy(cls, data: Any, metric: str = "reward") -> Estimate | None:
        """``benchmark.baseline`` / ``challenger`` -> the estimate of ``metric`` (``reward`` ...)."""
        if not isinstance(data, Mapping):
            return None
        value = _num(data.get(metric))
        if value is None:
            return None
        return cls(value, _num(data.get(f"{metric}_ci_low")), _num(data.get(f"{metric}_ci_high")))


@dataclass(frozen=True)
class GateRecord:
    """One gate at one evaluation: value against threshold and the outcome."""

    name: str
    value: float | None
    threshold: float | None
    passed: bool
    status: str
    """``pass``, ``fail`` or ``inconclusive`` (older reports: from ``passed``)."""
    ci_low: float | None = None
    ci_high: float | None = None
    compared: str | None = None
    """Which number was held against the threshold: ``estimate``, ``ci_low`` or ``ci_high``."""
    reason: str | None = None
    one_sided: bool = False
    """``ci_low`` / ``ci_high`` are one-sided bounds (progressive evidence), not a two-sided interval."""

    @classmethod
    def from_report(cls, name: str, data: Any) -> GateRecord | None:
        if not isinstance(data, Mapping):
            return None
        passed = data.get("passed") is True
        status = _str(data.get("status")) or ("pass" if passed else "fail")
        return cls(name=name, value=_num(data.get("value")), threshold=_num(data.get("threshold")), passed=passed,
                   status=status, ci_low=_num(data.get("ci_low")), ci_high=_num(data.get("ci_high")),
                   compared=_str(data.get("compared")), reason=_str(data.get("reason")),
                   one_sided=data.get("one_sided") is True)


@dataclass(frozen=True)
class EvaluationRecord:
    """One training report, reduced to what the history shows."""

    report_id: str
    created_at: datetime | None
    sequence: int | None
    verdict: str | None
    """``promote``, ``reject`` or ``inconclusive``."""
    outcome: str
    """``promoted``, ``rejected``, ``inconclusive`` or ``dry_run``."""
    dry_run: bool
    version_id: str | None
    """The version this evaluation created (promotions only)."""
    baseline_version_id: str | None
    reasons: tuple[str, ...]
    gates: tuple[GateRecord, ...]
    baseline: Estimate | None
    challenger: Estimate | None
    reward_delta: Estimate | None
    task_count: int | None
    estimator: str | None
    confidence: float | None = None
    """Confidence level of the intervals (``evaluation.confidence``)."""
    method: str | None = None
    """``progressive`` (every trajectory, confidence sequence) or ``holdout``; None in older reports."""
    looks: int | None = None
    """Progressive: looks at the evidence since the baseline was activated, this one included."""
    alpha: float | None = None
    """Progressive: the error rate the whole sequence of looks may spend."""
    member: str | None = None
    """With a challenger portfolio: the member put forward; None without one."""
    members: int | None = None
    """With a challenger portfolio: how many members it was chosen among."""

    @property
    def evidence_note(self) -> str:
        """One line saying what the intervals are, e.g. ``progressive · α 0.05 over 3 looks · member
        careful of 2``."""
        if self.method != "progressive":
            parts = [self.method] if self.method else []
        else:
            parts = ["progressive"]
            if self.alpha is not None:
                parts.append(f"α {self.alpha:g} over {self.looks if self.looks is not None else '?'} "
                             f"look{'s' if self.looks != 1 else ''}")
        if any(g.one_sided for g in self.gates):
            parts.append("one-sided gate bounds")
        if self.member is not None:
            parts.append(f"member {self.member} of {self.members if self.members is not None else '?'}")
        return " · ".join(parts)

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    def gate(self, name: str) -> GateRecord | None:
        return next((g for g in self.gates if g.name == name), None)

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> EvaluationRecord:
        bench = _map(report.get("benchmark"))
        delta = _map(_map(bench.get("deltas")).get("reward"))
        gates_raw = _map(report.get("gates"))
        order = {name: i for i, name in enumerate(GATE_ORDER)}
        names = sorted(gates_raw, key=lambda n: (order.get(n, len(order)), n))
        gates = tuple(g for g in (GateRecord.from_report(n, gates_raw[n]) for n in names) if g is not None)
        outcome = _str(report.get("outcome"))
        if outcome is None:  # reports without ``outcome``: derive it as the daemon does
            verdict = report.get("verdict")
            outcome = ("dry_run" if report.get("dry_run") else
                       {"promote": "promoted", "reject": "rejected"}.get(str(verdict), "inconclusive"))
        seq = _map(bench.get("sequential"))
        portfolio = _map(_map(report.get("evidence")).get("portfolio"))
        delta_value = _num(delta.get("value"))
        task_count = _num(bench.get("task_count"))
        reasons = report.get("reasons")
        return cls(
            report_id=str(report.get("report_id")),
            created_at=parse_time(report.get("created_at")),
            sequence=int(report["evaluation_sequence"]) if _num(report.get("evaluation_sequence")) is not None
            else None,
            verdict=_str(report.get("verdict")),
            outcome=outcome,
            dry_run=bool(report.get("dry_run")),
            version_id=_str(report.get("version_id")),
            baseline_version_id=_str(report.get("baseline_version_id")),
            reasons=tuple(r for r in reasons if isinstance(r, str)) if isinstance(reasons, list) else (),
            gates=gates,
            baseline=Estimate.from_policy(bench.get("baseline")),
            challenger=Estimate.from_policy(bench.get("challenger")),
            reward_delta=None if delta_value is None else Estimate(delta_value, _num(delta.get("ci_low")),
                                                                   _num(delta.get("ci_high"))),
            task_count=None if task_count is None else int(task_count),
            estimator=_str(bench.get("estimator")),
            confidence=_num(bench.get("confidence")),
            method=_str(bench.get("method")),
            looks=int(seq["looks"]) if _num(seq.get("looks")) is not None else None,
            alpha=_num(seq.get("alpha")),
            member=_str(portfolio.get("chosen")),
            members=len(portfolio["members"]) if isinstance(portfolio.get("members"), list) else None,
        )


@dataclass(frozen=True)
class VersionEvent:
    """An entry of ``current.json``'s history: an activation (promotion) or a rollback."""

    action: str
    """``activate`` or ``rollback``."""
    at: datetime | None
    from_version: str | None
    to_version: str | None
    source: str | None = None
    """Activations: who promoted (``daemon``, ``cycle`` ...)."""
    report_id: str | None = None
    trigger: str | None = None
    """Rollbacks: ``admin``, ``cli`` or ``guard``."""
    requested_by: str | None = None
    reason: str | None = None
    request_id: str | None = None

    @property
    def is_rollback(self) -> bool:
        return self.action == "rollback"

    @classmethod
    def from_entry(cls, entry: Any) -> VersionEvent | None:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("action"), str):
            return None
        return cls(action=entry["action"], at=parse_time(entry.get("at")), from_version=_str(entry.get("from")),
                   to_version=_str(entry.get("to")), source=_str(entry.get("source")),
                   report_id=_str(entry.get("report_id")), trigger=_str(entry.get("trigger")),
                   requested_by=_str(entry.get("requested_by")), reason=_str(entry.get("reason")),
                   request_id=_str(entry.get("request_id")))


@dataclass(frozen=True)
class RouterHistory:
    """A router's evaluations and version changes, oldest first."""

    router_id: str
    active_version: str | None
    evaluations: tuple[EvaluationRecord, ...]
    events: tuple[VersionEvent, ...]
    versions: tuple[str, ...] = ()
    """Saved version ids, newest first."""
    skipped: tuple[str, ...] = field(default=())
    """Reports or files that could not be read, with the reason."""

    @property
    def promotions(self) -> tuple[EvaluationRecord, ...]:
        return tuple(e for e in self.evaluations if e.promoted)

    @property
    def rollbacks(self) -> tuple[VersionEvent, ...]:
        return tuple(e for e in self.events if e.is_rollback)

    def interval_label(self) -> str:
        """``95% intervals`` when every evaluation used the same confidence level, else ``intervals``."""
        levels = {e.confidence for e in self.evaluations if e.confidence is not None}
        return f"{percent(next(iter(levels)))} intervals" if len(levels) == 1 else "intervals"

    def outcome_counts(self) -> dict[str, int]:
        """Evaluations per outcome, e.g. ``{"promoted": 2, "rejected": 1}``."""
        counts: dict[str, int] = {}
        for e in self.evaluations:
            counts[e.outcome] = counts.get(e.outcome, 0) + 1
        return counts

    def timeline(self) -> list[EvaluationRecord | VersionEvent]:
        """Evaluations and rollbacks interleaved in time order (undated ones keep their place at the end)."""
        items: list[tuple[datetime, int, int, EvaluationRecord | VersionEvent]] = []
        far = datetime.max.replace(tzinfo=UTC)
        for i, e in enumerate(self.evaluations):
            items.append((e.created_at or far, 0, i, e))
        for i, r in enumerate(self.rollbacks):
            items.append((r.at or far, 1, i, r))
        items.sort(key=lambda t: t[:3])
        return [t[3] for t in items]


def _eval_sort_key(e: EvaluationRecord) -> tuple[datetime, int, str]:
    return (e.created_at or datetime.max.replace(tzinfo=UTC), e.sequence or 0, e.report_id)


def router_history(store: RouterVersionStore) -> RouterHistory:
    """The history of the store's router."""
    skipped: list[str] = []
    evaluations: list[EvaluationRecord] = []
    for report in store.list_reports():
        if "corrupt" in report:
            skipped.append(f"report {report.get('report_id')}: {report['corrupt']}")
            continue
        evaluations.append(EvaluationRecord.from_report(report))
    evaluations.sort(key=_eval_sort_key)
    try:
        current = store.get_current()
    except (StoreError, OSError) as err:  # a corrupt current.json must not hide the reports
        skipped.append(f"current.json: {err}")
        current = None
    history = current.get("history", []) if current else []
    events = tuple(e for e in (VersionEvent.from_entry(h) for h in history) if e is not None)
    versions = tuple(m.version_id for m in store.list_versions())
    return RouterHistory(
        router_id=store.router_id,
        active_version=current.get("version_id") if current else None,
        evaluations=tuple(evaluations),
        events=events,
        versions=versions,
        skipped=tuple(skipped),
    )


def discover_routers(base_dir: str | os.PathLike[str]) -> list[str]:
    """Router ids with a store under ``base_dir`` (a folder with versions or training reports), sorted."""
    base = Path(base_dir)
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        if not entry.is_dir() or not ROUTER_ID_RE.match(entry.name) or entry.name in {".", ".."}:
            continue
        path = Path(entry.path)
        if (path / "router-versions").is_dir() or (path / "training-reports").is_dir():
            out.append(entry.name)
    return out


def build_histories(base_dir: str | os.PathLike[str], routers: Iterable[str] | None = None) -> list[RouterHistory]:
    """Histories of ``routers`` (default: every router found under ``base_dir``), in the given or sorted order."""
    chosen: Sequence[str] = list(routers) if routers is not None else discover_routers(base_dir)
    return [router_history(RouterVersionStore(Path(base_dir), r)) for r in chosen]
