"""The training report, typed: built once by an evaluation, turned into JSON once (store, events).

Everything that acts on an evaluation — the store, the router event, metrics, the
post-promotion guard, ``memabrad cycle``'s output — reads these attributes instead of
digging through a dict by key. ``gates`` and ``benchmark`` keep their JSON shape
(docs/contract.md §3): they are the report's published evidence and are read as such.
A report read back from the store (a replayed evaluation) becomes the same object.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Promised:
    """What the promoted challenger was estimated to deliver: the guard's reference."""

    reward: float
    error_rate: float
    latency_ms: float


@dataclass(frozen=True)
class TrainingReport:
    """Verdict, gates, benchmark and the evidence behind one evaluation (docs/contract.md §3)."""

    report_id: str
    router_id: str
    created_at: str
    evaluation_sequence: int
    verdict: str
    outcome: str
    """``promoted``, ``rejected``, ``inconclusive`` or ``dry_run`` (the metric label)."""
    would_promote: bool
    dry_run: bool
    paused: bool
    version_id: str | None
    previous_version_id: str | None
    baseline_version_id: str | None
    baseline_pinned: bool
    reasons: tuple[str, ...]
    estimator_health: tuple[str, ...]
    gates: dict[str, dict[str, Any]]
    benchmark: dict[str, Any]
    gate_config_hash: str
    gate_config: dict[str, Any]
    evidence: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys of a stored report this version does not know (kept, written back unchanged)."""

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    @property
    def promised(self) -> Promised:
        """The challenger's estimated reward, error rate and latency (0 where not estimable)."""
        ch = self.benchmark.get("challenger") or {}
        return Promised(ch.get("reward") or 0.0, ch.get("error_rate") or 0.0, ch.get("latency_ms") or 0.0)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (key order as reports have always been written)."""
        return {
            "report_id": self.report_id,
            "router_id": self.router_id,
            "created_at": self.created_at,
            "evaluation_sequence": self.evaluation_sequence,
            "verdict": self.verdict,
            "outcome": self.outcome,
            "promoted": self.promoted,
            "would_promote": self.would_promote,
            "dry_run": self.dry_run,
            "paused": self.paused,
            "version_id": self.version_id,
            "previous_version_id": self.previous_version_id,
            "baseline_version_id": self.baseline_version_id,
            "baseline_pinned": self.baseline_pinned,
            "reasons": list(self.reasons),
            "estimator_health": list(self.estimator_health),
            "gates": self.gates,
            "benchmark": self.benchmark,
            "gate_config_hash": self.gate_config_hash,
            "gate_config": self.gate_config,
            "evidence": self.evidence,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingReport:
        """A stored report (one written by an older version may lack the newer keys)."""
        known = {f.name for f in fields(cls)} - {"extra"} | {"promoted"}
        return cls(
            report_id=d["report_id"], router_id=d["router_id"], created_at=d["created_at"],
            evaluation_sequence=int(d.get("evaluation_sequence") or 0), verdict=d["verdict"], outcome=d["outcome"],
            would_promote=bool(d.get("would_promote")), dry_run=bool(d.get("dry_run")),
            paused=bool(d.get("paused")), version_id=d.get("version_id"),
            previous_version_id=d.get("previous_version_id"), baseline_version_id=d.get("baseline_version_id"),
            baseline_pinned=bool(d.get("baseline_pinned")), reasons=tuple(d.get("reasons") or ()),
            estimator_health=tuple(d.get("estimator_health") or ()), gates=dict(d.get("gates") or {}),
            benchmark=dict(d.get("benchmark") or {}), gate_config_hash=d.get("gate_config_hash", ""),
            gate_config=dict(d.get("gate_config") or {}), evidence=dict(d.get("evidence") or {}),
            extra={k: v for k, v in d.items() if k not in known},
        )
