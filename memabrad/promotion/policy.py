"""The promotion policy: gates plus estimator health give a verdict and an action.

Verdicts: ``promote``, ``reject``, ``inconclusive`` (statistical mode only: an interval
straddles a threshold, there are not yet enough tasks, or the estimator is unhealthy —
keep collecting and decide again at the next threshold). Dry run and paused promotions
do not change the verdict, only the action: the evaluation is reported, nothing is
promoted.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from memabrad.evaluation.compare import BenchmarkResult
from memabrad.evaluation.estimators import Interval
from memabrad.evaluation.sequential import METHOD as PROGRESSIVE
from memabrad.promotion.gates import Direction, GateResult, interval_gate, point_gate

Verdict = Literal["promote", "reject", "inconclusive"]
Action = Literal["promoted", "rejected", "inconclusive", "dry_run"]
_ACTIONS: dict[Verdict, Action] = {"promote": "promoted", "reject": "rejected", "inconclusive": "inconclusive"}

UNSUPPORTED_SHARE_LIMIT = 0.01


@dataclass(frozen=True)
class PolicySettings:
    """Thresholds of the gates and of estimator health (from ``promotion`` and ``evaluation``)."""

    min_reward_delta: float = 0.01
    max_error_rate_increase: float = 0.02
    max_latency_increase_ms: float = 250.0
    required_task_count: int = 200
    mode: Literal["statistical", "point"] = "statistical"
    slice_gate_enabled: bool = False
    slice_min_tasks: int = 100
    slice_max_regression: float = 0.05
    min_effective_sample_size: float = 50.0
    max_importance_weight: float = 50.0
    trajectories_per_weight: float = 100.0
    method: Literal["progressive", "holdout"] = "progressive"
    target_n: int = 5000

    @classmethod
    def from_config(cls, promotion: Any, evaluation: Any) -> PolicySettings:
        return cls(
            min_reward_delta=promotion.min_reward_delta,
            max_error_rate_increase=promotion.max_error_rate_increase,
            max_latency_increase_ms=promotion.max_latency_increase_ms,
            required_task_count=promotion.required_task_count,
            mode=promotion.mode,
            slice_gate_enabled=promotion.slice_gate.enabled,
            slice_min_tasks=promotion.slice_gate.min_tasks,
            slice_max_regression=promotion.slice_gate.max_regression,
            min_effective_sample_size=evaluation.min_effective_sample_size,
            max_importance_weight=evaluation.max_importance_weight,
            trajectories_per_weight=evaluation.trajectories_per_weight,
            method=evaluation.method,
            target_n=evaluation.target_n,
        )

    def config_hash(self) -> str:
        """sha256 of the gate configuration, so a report says exactly which rules judged it."""
        blob = json.dumps(self.__dict__, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PromotionDecision:
    verdict: Verdict
    action: Action
    gates: dict[str, GateResult]
    reasons: list[str]
    health: list[str] = field(default_factory=list)
    dry_run: bool = False
    paused: bool = False
    gate_config_hash: str = ""

    @property
    def would_promote(self) -> bool:
        return self.verdict == "promote"

    def gates_dict(self) -> dict[str, Any]:
        return {name: g.to_dict() for name, g in self.gates.items()}


class PromotionPolicy:
    """Applies the gates to a benchmark result.

    >>> from memabrad.evaluation.estimators import Interval
    >>> from memabrad.evaluation.compare import BenchmarkResult, PolicyEstimate, Diagnostics
    >>> iv = lambda v, h: Interval(v, v - h, v + h, 500)
    >>> est = PolicyEstimate("x", iv(0.5, 0.01), iv(0.05, 0.01), iv(800, 20))
    >>> res = BenchmarkResult(500, 500, 0, "dr", 0.95, 0, est, est,
    ...     {"reward": iv(0.012, 0.004), "error_rate": iv(0.0, 0.01), "latency_ms": iv(5, 10)},
    ...     Diagnostics(400.0, 4.0, 0.6, 0, []))
    >>> d = PromotionPolicy(PolicySettings(min_reward_delta=0.02, mode="point")).decide(res)
    >>> (d.verdict, d.reasons)
    ('reject', ['reward_delta 0.012 < min 0.020'])
    """

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings

    def _delta_specs(self, result: BenchmarkResult) -> list[tuple[str, Interval, float, Direction]]:
        """(gate, delta interval, threshold, direction) of the three delta gates."""
        s = self.settings
        d = result.deltas
        return [
            ("reward_delta", d["reward"], s.min_reward_delta, ">="),
            ("error_rate_delta", d["error_rate"], s.max_error_rate_increase, "<="),
            ("latency_delta_ms", d["latency_ms"], s.max_latency_increase_ms, "<="),
        ]

    def _gates(self, result: BenchmarkResult) -> dict[str, GateResult]:
        s = self.settings
        gates: dict[str, GateResult] = {}
        for name, iv, threshold, direction in self._delta_specs(result):
            if s.mode == "statistical":
                one_sided = iv.bound_low is not None and iv.bound_high is not None  # progressive evidence
                lo, hi = (iv.bound_low, iv.bound_high) if one_sided else (iv.ci_low, iv.ci_high)
                gates[name] = interval_gate(name, iv.value, lo, hi, threshold, direction, result.confidence,
                                            one_sided=one_sided)
            else:
                g = point_gate(name, iv.value, threshold, direction)
                gates[name] = GateResult(g.name, g.value, g.threshold, g.direction, g.status, g.reason,
                                         iv.ci_low, iv.ci_high)
        count = point_gate("task_count", result.task_count, s.required_task_count, ">=")
        if s.mode == "statistical" and not count.passed:
            count = GateResult(count.name, count.value, count.threshold, ">=", "inconclusive",
                               count.reason + " (collecting more)")
        gates["task_count"] = count
        if s.slice_gate_enabled:
            gates["slice_reward_delta"] = self._slice_gate(result)
        if result.holdout is not None and s.mode == "statistical":
            gates["holdout_check"] = self._holdout_gate(result.holdout, result.task_count)
        return gates

    def _holdout_gate(self, holdout: BenchmarkResult, evidence: int) -> GateResult:
        """Veto, spending no alpha: the promoted model itself, frozen, on hold-out tasks it never learned
        from, must not be shown on the wrong side of any threshold (an interval wholly past it: ``fail``),
        nor predict by its own heads an error rate or latency past its allowance (``inconclusive``: its heads
        are a model, not evidence at a confidence level; early on they are rough, and the look is decided
        again at the next one).

        The streamed evidence covers the average of the models judged since the baseline; the promoted
        one is the newest, and where near-tied routes trade places as the model learns (or a priced
        member's prices move), the newest can sit past a guardrail the average is inside (a held-out
        workload: truly +272 and +360 ms against 250, promoted). Its predicted deltas are precise (no
        importance weights) and say so; where its heads are wrong they can only block, never promote.

        A veto stops a candidate; until the streamed evidence holds the required task count there is
        none (a look whose evidence was gathered against a version replaced since holds nothing), so
        the veto waits rather than turning "not enough evidence" into a rejection."""
        name = "holdout_check"
        need = self.settings.required_task_count
        if evidence < need:
            return GateResult(name, 0.0, 0.0, "<=", "inconclusive",
                              f"hold-out veto waits for the evidence ({evidence} of {need} trajectories)")
        if holdout.logged_count + holdout.suite_count == 0:
            return GateResult(name, 0.0, 0.0, "<=", "pass", "no hold-out tasks yet: nothing contradicts")
        bad = [g.reason for g in (interval_gate(n, iv.value, iv.ci_low, iv.ci_high, t, dr, holdout.confidence)
                                  for n, iv, t, dr in self._delta_specs(holdout)) if g.status == "fail"]
        predicted = holdout.predicted_deltas or {}
        doubts = []
        for metric, gate, t, digits in (("error_rate", "error_rate_delta", self.settings.max_error_rate_increase, 3),
                                        ("latency_ms", "latency_delta_ms", self.settings.max_latency_increase_ms, 0)):
            v = predicted.get(metric, math.nan)
            if v > t:  # NaN (no logged tasks) is never past it
                doubts.append(f"{gate} predicted by the promoted model's own heads {v:.{digits}f} > max {t:g}")
        if bad:
            return GateResult(name, float(len(bad)), 0.0, "<=", "fail",
                              f"hold-out window ({holdout.task_count} tasks) contradicts: {'; '.join(bad + doubts)}")
        if doubts:  # a model's own view, not evidence at a confidence level: it holds the promotion back, no more
            return GateResult(name, float(len(doubts)), 0.0, "<=", "inconclusive",
                              f"hold-out window ({holdout.task_count} tasks): {'; '.join(doubts)}")
        return GateResult(name, 0.0, 0.0, "<=", "pass",
                          f"hold-out window ({holdout.task_count} tasks) does not contradict the candidate")

    def _slice_gate(self, result: BenchmarkResult) -> GateResult:
        """Worst reward delta among slices with enough tasks, on point estimates."""
        s = self.settings
        big = {k: v for k, v in result.slices.items()
               if v.task_count >= s.slice_min_tasks and not math.isnan(v.reward_delta.value)}
        if not big:
            return GateResult("slice_reward_delta", 0.0, -s.slice_max_regression, ">=", "pass",
                              f"no slice has {s.slice_min_tasks} tasks yet")
        worst = min(big, key=lambda k: big[k].reward_delta.value)
        g = point_gate("slice_reward_delta", big[worst].reward_delta.value, -s.slice_max_regression, ">=")
        return GateResult(g.name, g.value, g.threshold, g.direction, g.status, f"{g.reason} (slice {worst})")

    def weight_limit(self, result: BenchmarkResult) -> float:
        """The largest matched importance weight ``result``'s evidence can carry.

        A weight of w stands for a route the agent logged with probability 1/w; what makes it a problem is
        not its size but its share of the evidence (the expected sum of the matched weights is the number
        of trajectories), since a confidence sequence estimates its variance from such trajectories. So
        on the progressive evidence the limit grows with it, one unit of weight per
        ``trajectories_per_weight`` trajectories (100: the heaviest trajectory at most 1 % of the
        evidence's weight), never below ``max_importance_weight`` (what the first looks need). A fixed-n
        hold-out interval gets no such allowance (docs/benchmarks.md, "Agents that explore little")."""
        s = self.settings
        if result.method != PROGRESSIVE or s.trajectories_per_weight <= 0:
            return s.max_importance_weight
        return max(s.max_importance_weight, result.logged_count / s.trajectories_per_weight)

    def _health(self, result: BenchmarkResult) -> list[str]:
        s = self.settings
        diag = result.challenger_diagnostics
        problems: list[str] = []
        if result.logged_count == 0:
            return problems
        if diag.effective_sample_size < s.min_effective_sample_size:
            problems.append(f"effective sample size {diag.effective_sample_size:.1f} < min "
                            f"{s.min_effective_sample_size:g}")
        limit = self.weight_limit(result)
        if diag.max_weight > limit:
            problems.append(f"importance weight {diag.max_weight:.1f} > max {limit:g}")
        if diag.unsupported_tasks > UNSUPPORTED_SHARE_LIMIT * result.logged_count:
            problems.append(f"challenger picks routes the logging policy never tried "
                            f"({', '.join(diag.unsupported_routes)}) on {diag.unsupported_tasks} tasks")
        return problems

    def decide(self, result: BenchmarkResult, *, dry_run: bool = False, paused: bool = False) -> PromotionDecision:
        gates = self._gates(result)
        health = self._health(result)
        failed = [g.reason for g in gates.values() if g.status == "fail"]
        unsure = [g.reason for g in gates.values() if g.status == "inconclusive"]
        verdict: Verdict
        if self.settings.mode == "point":
            verdict = "reject" if failed else "promote"
            reasons = failed
        elif failed:
            verdict, reasons = "reject", failed + unsure
        elif unsure or health:
            verdict = "inconclusive"
            reasons = unsure + [f"estimator unhealthy: {h}" for h in health]
        else:
            verdict, reasons = "promote", []
        if verdict == "promote":
            reasons = [g.reason for g in gates.values()]
        action: Action
        if dry_run or paused:
            action = "dry_run"
            reasons = [*reasons, "dry run: nothing promoted" if dry_run else "promotions paused: nothing promoted"]
        else:
            action = _ACTIONS[verdict]
        return PromotionDecision(verdict, action, gates, reasons, health, dry_run, paused,
                                 self.settings.config_hash())
