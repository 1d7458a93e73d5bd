"""Judge the progressive evidence with confidence sequences: valid at every look.

``learning.progressive`` keeps running moments of the doubly robust influence values of
challenger and baseline on every trajectory since the baseline was activated, each
scored before the challenger learned it. Here those moments become a ``BenchmarkResult``
whose intervals are asymptotic confidence sequences (``stats.confidence_sequence``):
the promotion gates read it exactly as they read a hold-out benchmark, and because a
confidence sequence covers its target at every n at once, the daemon may look after
every ``min_new_trajectories`` for as long as it likes and still promote a challenger
that is not truly better with probability at most ``1 - confidence``.

What the evidence covers: the average true advantage of the challengers judged since the
baseline was activated (the running challenger at each trajectory). The promoted model is
the newest of them; that it is at least as good as that average is what learning from
more data gives, and it is checked twice more — on the hold-out window, by a veto that
spends no alpha (``holdout`` in the result: a gate whose hold-out interval lies wholly on
the wrong side blocks the promotion), and live, by the post-promotion guard.

The challenger judged first is untrained, and a running average remembers it for long; so
after 250, 500, 1,000, 2,000, ... trajectories (``RESTART_AT``: counted in trajectories, so the
streams do not depend on how often the daemon looks) a further stream starts that leaves the
earlier stretch out. Stream
``i`` gets ``alpha * 6 / (pi^2 (i + 1)^2)`` of the alpha (the shares add up to less than
alpha), a promotion may rest on any one stream, and the chance that any of them is wrong at
any look stays at most alpha.

Errors are coin flips that importance weights can multiply twentyfold, so the error-rate
difference's sample variance is unreliable until a few rare weighted flips have landed; its
interval uses the larger of the sample variance and a model-based one
(``ProgressiveEvidence.error_variance``). Every metric's interval also stands on a floor that the
logged propensities give before any rare route has been logged (``ProgressiveEvidence.unseen_variance``):
an agent that explores little logs the routes a challenger prefers so rarely that the sample
variance would otherwise stay small for thousands of trajectories.

Each gate asks a one-sided question — reward at least this much better, error rate and latency
at most this much worse — so each delta also carries one-sided bounds (``bound_low`` /
``bound_high``, a half-normal mixture), each side wrong at any look with probability at most the
stream's alpha. A promotion needs every gate to pass; a wrong one needs at least one gate whose
claim is false to pass anyway, which happens with probability at most alpha (an
intersection-union test), so no alpha is split between the gates or the sides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from memabrad.evaluation.compare import METRICS, BenchmarkResult, Diagnostics, PolicyEstimate
from memabrad.evaluation.estimators import Interval
from memabrad.learning.progressive import ProgressiveEvidence
from memabrad.stats.confidence_sequence import asymptotic_cs, cs_one_sided_width
from memabrad.stats.moments import Moments

METHOD = "progressive"
INTERVAL = "asymptotic confidence sequence (Waudby-Smith et al. 2021)"
GATE_BOUNDS = "one-sided, each at alpha (half-normal mixture; every gate must pass)"
DEFAULT_TARGET_N = 5000


@dataclass(frozen=True)
class SequentialSettings:
    """``confidence``: 1 - the alpha every decision on one baseline spends over all its looks;
    ``target_n``: where the sequence is tightest (every value is valid)."""

    confidence: float = 0.95
    target_n: int = DEFAULT_TARGET_N

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence


def _interval(m: Moments, s: SequentialSettings, floor: float = math.nan, *, bounds: bool = False) -> Interval:
    """``floor``: a model-based variance the sample variance may not go below (NaN: none); ``bounds``:
    also the one-sided bounds a gate compares (each side at the whole alpha)."""
    if m.n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    if m.n == 1:
        return Interval(m.mean, -math.inf, math.inf, 1, *((-math.inf, math.inf) if bounds else ()))
    sd = math.sqrt(m.variance_at_least(floor))
    lo, hi = asymptotic_cs(m.mean, sd, m.n, s.alpha, s.target_n)
    if not bounds:
        return Interval(m.mean, lo, hi, m.n)
    w = cs_one_sided_width(sd, m.n, s.alpha, s.target_n)
    return Interval(m.mean, lo, hi, m.n, m.mean - w, m.mean + w)


def _floor(evidence: ProgressiveEvidence, metric: int) -> float:
    """The larger of the model-based variances under metric ``metric``'s paired difference (NaN: none)."""
    floors = [v for v in (evidence.unseen_variance(metric),
                          evidence.error_variance() if METRICS[metric] == "error_rate" else math.nan)
              if not math.isnan(v)]
    return max(floors) if floors else math.nan


def stream_share(i: int) -> float:
    """Stream ``i``'s share of alpha: 6 / (pi^2 (i + 1)^2), so all streams together spend at most alpha.

    >>> round(sum(stream_share(i) for i in range(1000)), 3)
    0.999
    """
    return 6.0 / (math.pi ** 2 * (i + 1) ** 2)


def stream_results(evidence: ProgressiveEvidence, settings: SequentialSettings, *, min_trajectories: int = 0,
                   challenger_name: str = "challenger", baseline_name: str = "logging",
                   holdout: BenchmarkResult | None = None, members: int = 1,
                   member: str | None = None) -> list[BenchmarkResult]:
    """One result per stream of the evidence (the whole of it, then each restart with at least
    ``min_trajectories``), each at its share of alpha: a promotion may rest on any one of them and the
    chance that any is wrong is still at most ``settings.alpha``. ``members``: the portfolio members
    the challenger was chosen among, each judged at this ``settings.alpha`` (reported as spent);
    ``member``: the one chosen."""
    out = []
    for i, stream in enumerate(evidence.streams()):
        if i and stream.n < min_trajectories:
            continue
        share = SequentialSettings(1.0 - settings.alpha * stream_share(i), settings.target_n)
        out.append(sequential_result(stream, share, challenger_name=challenger_name, baseline_name=baseline_name,
                                     holdout=holdout, alpha_total=settings.alpha * members,
                                     streams=1 + len(evidence.restarts), members=members, member=member))
    return out


def sequential_result(evidence: ProgressiveEvidence, settings: SequentialSettings, *, estimator: str = "dr",
                      challenger_name: str = "challenger", baseline_name: str = "logging",
                      holdout: BenchmarkResult | None = None, alpha_total: float | None = None,
                      streams: int = 1, members: int = 1, member: str | None = None) -> BenchmarkResult:
    """The progressive evidence as a benchmark result with confidence-sequence intervals.

    >>> ev = ProgressiveEvidence()
    >>> for i in range(400):
    ...     ev.add((0.8 + 0.1 * (i % 2), 0.0, 500.0), (0.5, 0.0, 500.0), weight=2.0, unsupported=False, at=str(i))
    >>> r = sequential_result(ev, SequentialSettings())
    >>> (r.task_count, round(r.deltas["reward"].value, 2), r.deltas["reward"].ci_low > 0.3, r.method)
    (400, 0.35, True, 'progressive')
    """
    n = evidence.n

    def estimate(name: str, ms: list[Moments]) -> PolicyEstimate:
        return PolicyEstimate(name, *(_interval(m, settings) for m in ms))

    diag = Diagnostics(
        effective_sample_size=evidence.effective_sample_size,
        max_weight=evidence.max_weight,
        match_rate=evidence.matches / n if n else 0.0,
        unsupported_tasks=evidence.unsupported,
        unsupported_routes=sorted(evidence.unsupported_routes),
    )
    floors = [_floor(evidence, i) for i in range(len(METRICS))]
    info = {
        "interval": INTERVAL,
        "variance_floor_binds": [m for i, m in enumerate(METRICS) if floors[i] > max(evidence.delta[i].variance, 0.0)],
        "gate_bounds": GATE_BOUNDS,
        "alpha": round(settings.alpha, 6),
        "alpha_spent": round(alpha_total if alpha_total is not None else settings.alpha, 6),
        "looks": evidence.looks,
        "stream_start_look": evidence.start_look,
        "stream_start_trajectory": evidence.start_n,
        "streams": streams,
        "portfolio_members": members,
        **({"portfolio_member": member} if member is not None else {}),
        "target_n": settings.target_n,
        "trajectories": n,
        "baseline_version_id": evidence.baseline_version_id,
        "first_trajectory_id": evidence.first_at,
        "last_trajectory_id": evidence.last_at,
        "covers": ("average advantage of the challengers judged since the baseline was activated"
                   if evidence.start_n == 0 else
                   f"average advantage of the challengers judged after the first {evidence.start_n} "
                   "trajectories against this baseline"),
    }
    return BenchmarkResult(
        task_count=n,
        logged_count=n,
        suite_count=0,
        estimator=estimator,
        confidence=settings.confidence,
        imputed_propensities=holdout.imputed_propensities if holdout is not None else 0,
        baseline=estimate(baseline_name, evidence.baseline),
        challenger=estimate(challenger_name, evidence.challenger),
        deltas={m: _interval(evidence.delta[i], settings, floors[i], bounds=True) for i, m in enumerate(METRICS)},
        challenger_diagnostics=diag,
        slices=dict(holdout.slices) if holdout is not None else {},
        method=METHOD,
        sequential=info,
        holdout=holdout,
    )
