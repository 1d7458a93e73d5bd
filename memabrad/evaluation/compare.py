"""Benchmark a challenger against a baseline on the same tasks, with paired deltas.

Logged items are evaluated off-policy (DR by default, IPS or SNIPS by choice); static
suite items, whose outcome for every route is known, by exact replay. Both kinds reduce
to per-task influence values, so they pool into one estimate per metric and the
challenger-minus-baseline deltas are paired per task.

With no baseline router (no version active yet) the baseline is the logging policy,
estimated on-policy from the logged outcomes; the suite is then skipped because the
logging policy's choices on it are unknown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memabrad.evaluation.benchmark import LoggedItem, SuiteItem
from memabrad.evaluation.estimators import Interval, effective_sample_size, influence, mean_interval
from memabrad.evaluation.window_arrays import LoggedBatch, WindowArrays
from memabrad.learning.batch import best_columns, predict_all
from memabrad.learning.router import Router

METRICS = ("reward", "error_rate", "latency_ms")
LOGGING_POLICY = "logging"


@dataclass(frozen=True)
class PolicyEstimate:
    name: str
    reward: Interval
    error_rate: Interval
    latency_ms: Interval

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version_id": self.name}
        for metric in METRICS:
            iv: Interval = getattr(self, metric)
            out[metric] = _num(iv.value)
            out[f"{metric}_ci_low"] = _num(iv.ci_low)
            out[f"{metric}_ci_high"] = _num(iv.ci_high)
        return out


@dataclass(frozen=True)
class Diagnostics:
    """Health of the importance weights behind a policy's estimate."""

    effective_sample_size: float
    max_weight: float
    match_rate: float
    unsupported_tasks: int
    unsupported_routes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "effective_sample_size": round(self.effective_sample_size, 3),
            "max_weight": round(self.max_weight, 6),
            "match_rate": round(self.match_rate, 6),
            "unsupported_tasks": self.unsupported_tasks,
            "unsupported_routes": self.unsupported_routes,
        }


@dataclass(frozen=True)
class SliceResult:
    task_count: int
    baseline_reward: Interval
    challenger_reward: Interval
    reward_delta: Interval

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_count": self.task_count,
            "baseline_reward": _num(self.baseline_reward.value),
            "challenger_reward": _num(self.challenger_reward.value),
            "reward_delta": _num(self.reward_delta.value),
            "reward_delta_ci_low": _num(self.reward_delta.ci_low),
            "reward_delta_ci_high": _num(self.reward_delta.ci_high),
        }


@dataclass(frozen=True)
class BenchmarkResult:
    task_count: int
    logged_count: int
    suite_count: int
    estimator: str
    confidence: float
    imputed_propensities: int
    baseline: PolicyEstimate
    challenger: PolicyEstimate
    deltas: dict[str, Interval]
    challenger_diagnostics: Diagnostics
    slices: dict[str, SliceResult] = field(default_factory=dict)
    method: str = "holdout"
    sequential: dict[str, Any] | None = None
    holdout: BenchmarkResult | None = None
    # per metric, the challenger's own heads' mean predicted outcome of its choices minus that of the
    # baseline's (the logging agent's: the logged routes') on the logged tasks: no importance weights, so
    # precise where the doubly robust delta is not, and biased where the heads are (see the hold-out veto)
    predicted_deltas: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``benchmark`` object of events and reports (docs/contract.md §3) plus evidence."""
        out = self._core_dict()
        if self.predicted_deltas is not None:
            out["predicted_deltas"] = {m: _num(v) for m, v in self.predicted_deltas.items()}
        out["method"] = self.method
        if self.sequential is not None:
            out["sequential"] = dict(self.sequential)
        if self.holdout is not None:
            out["holdout"] = self.holdout.to_dict()
        return out

    def _core_dict(self) -> dict[str, Any]:
        return {
            "task_count": self.task_count,
            "logged_task_count": self.logged_count,
            "suite_task_count": self.suite_count,
            "estimator": self.estimator,
            "confidence": self.confidence,
            "imputed_propensities": self.imputed_propensities,
            "baseline": self.baseline.summary(),
            "challenger": self.challenger.summary(),
            "deltas": {
                m: {"value": _num(iv.value), "ci_low": _num(iv.ci_low), "ci_high": _num(iv.ci_high)}
                for m, iv in self.deltas.items()
            },
            "diagnostics": self.challenger_diagnostics.to_dict(),
            "slices": {k: s.to_dict() for k, s in sorted(self.slices.items())},
        }


def _num(v: float) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 6)


@dataclass
class _Influences:
    """Per-task influence values of one policy, per metric, plus what it chose."""

    phi: dict[str, np.ndarray]


def _logged_influences(batch: LoggedBatch, chosen: np.ndarray | None, model_preds: dict[str, np.ndarray],
                       estimator: str) -> _Influences:
    """Influences of a policy's choices (columns), or of the logging policy when ``chosen`` is None."""
    n = len(batch.p)
    if chosen is None:
        return _Influences({m: influence("on_policy", batch.y[m], batch.p, np.ones(n, bool)) for m in METRICS})
    match = chosen == batch.logged
    rows = np.arange(n)
    phi = {}
    for m in METRICS:
        q_pi = model_preds[m][rows, chosen] if estimator == "dr" else None
        q_log = model_preds[m][rows, batch.logged] if estimator == "dr" else None
        phi[m] = influence(estimator, batch.y[m], batch.p, match, q_pi, q_log)
    return _Influences(phi)


def _suite_influences(items: Sequence[SuiteItem], router: Router) -> _Influences:
    n = len(items)
    chosen = []
    for s in items:
        x, group = router.task_features(s.task, router.hint_for(s.task))
        chosen.append(router.best(x, s.candidates, group))
    outs = [s.outcomes[c] for s, c in zip(items, chosen, strict=True)]
    phi = {
        "reward": np.fromiter((o.reward for o in outs), float, n),
        "error_rate": np.fromiter((1.0 if o.error else 0.0 for o in outs), float, n),
        "latency_ms": np.fromiter((o.latency_ms for o in outs), float, n),
    }
    return _Influences(phi)


def _cat(a: _Influences, b: _Influences | None) -> _Influences:
    if b is None:
        return a
    return _Influences({m: np.concatenate([a.phi[m], b.phi[m]]) for m in METRICS})


def resolve_estimator(name: str, items: Sequence[LoggedItem]) -> str:
    """``auto`` is DR when any logged propensity is known, else SNIPS (robust to a wrong scale)."""
    if name != "auto":
        return name
    return "dr" if any(not i.imputed for i in items) or not items else "snips"


def compare(
    challenger: Router,
    baseline: Router | None,
    logged: Sequence[LoggedItem],
    suite: Sequence[SuiteItem] = (),
    *,
    estimator: str = "auto",
    confidence: float = 0.95,
    supported_routes: set[str] | None = None,
    arrays: WindowArrays | None = None,
) -> BenchmarkResult:
    """Estimate both policies on the same tasks; ``challenger`` doubles as the DR outcome model.

    ``arrays``: the router's window arrays kept from its last look (the daemon's), so only the items
    that arrived since are converted; the result is the same without it."""
    est = resolve_estimator(estimator, logged)
    dim = 1 << max(challenger.hash_bits, baseline.hash_bits if baseline is not None else 0)
    batch = arrays.batch(logged, dim) if arrays is not None else LoggedBatch.of(logged, dim)
    outcome_model = predict_all(challenger, batch.X, batch.routes, batch.groups)
    ch_cols = best_columns(outcome_model["score"], batch.allowed)
    ch_choices = [batch.routes[c] for c in ch_cols]
    ch = _logged_influences(batch, ch_cols, outcome_model, est)
    if baseline is None:
        suite = ()
        bl = _logged_influences(batch, None, outcome_model, est)
        baseline_name = LOGGING_POLICY
    else:
        bl_cols = arrays.baseline_choices(batch, baseline) if arrays is not None else batch.choose(baseline)
        bl = _logged_influences(batch, bl_cols, outcome_model, est)
        baseline_name = baseline.version_id or "baseline"
    if suite:
        ch = _cat(ch, _suite_influences(suite, challenger))
        bl = _cat(bl, _suite_influences(suite, baseline))  # type: ignore[arg-type]

    def estimate(name: str, inf: _Influences) -> PolicyEstimate:
        return PolicyEstimate(name, *(mean_interval(inf.phi[m], confidence) for m in METRICS))

    deltas = {m: mean_interval(ch.phi[m] - bl.phi[m], confidence) for m in METRICS}
    predicted = None
    if len(batch.p):
        rows = np.arange(len(batch.p))
        base_cols = batch.logged if baseline is None else bl_cols
        predicted = {m: float(np.mean(outcome_model[m][rows, ch_cols] - outcome_model[m][rows, base_cols]))
                     for m in METRICS}

    logged_routes = supported_routes if supported_routes is not None else {i.route for i in logged}
    unsupported = [c for c in ch_choices if c not in logged_routes]
    n_logged = len(logged)
    p = batch.p
    match = ch_cols == batch.logged
    diag = Diagnostics(
        effective_sample_size=effective_sample_size(p, match) if n_logged else 0.0,
        max_weight=float(np.max(np.where(match, 1.0 / p, 0.0))) if n_logged else 0.0,
        match_rate=float(match.mean()) if n_logged else 0.0,
        unsupported_tasks=len(unsupported),
        unsupported_routes=sorted(set(unsupported)),
    )

    types = [g or "unknown" for g in batch.types] + [s.task_type or "unknown" for s in suite]
    slices: dict[str, SliceResult] = {}
    type_arr = np.array(types, dtype=object)
    for t in sorted(set(types)):
        mask = type_arr == t
        slices[t] = SliceResult(
            int(mask.sum()),
            mean_interval(bl.phi["reward"][mask], confidence),
            mean_interval(ch.phi["reward"][mask], confidence),
            mean_interval(ch.phi["reward"][mask] - bl.phi["reward"][mask], confidence),
        )

    return BenchmarkResult(
        task_count=n_logged + len(suite),
        logged_count=n_logged,
        suite_count=len(suite),
        estimator=est,
        confidence=confidence,
        imputed_propensities=int(batch.imputed.sum()),
        baseline=estimate(baseline_name, bl),
        challenger=estimate(challenger.version_id or "challenger", ch),
        deltas=deltas,
        challenger_diagnostics=diag,
        slices=slices,
        predicted_deltas=predicted,
    )
