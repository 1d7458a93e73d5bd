"""Power and safety of the promotion gates, in seeded repetitions with exact ground truth.

How many trajectories does the daemon need before it promotes a challenger that is truly
better, and how often does it promote one that is not? Both methods run side by side on
the same logged streams, through the product's own gate code (``PromotionPolicy``):

- ``holdout`` (before): the 20 % hold-out window (at most ``window_size`` tasks), doubly
  robust estimates, a fixed-n normal interval at every look;
- ``progressive`` (now): every trajectory scored before the outcome model learns it,
  doubly robust, asymptotic confidence sequences (valid at every look) over the whole
  evidence and over the restart streams, each at its share of alpha, plus the hold-out veto
  (``promotion.evaluation.decide_streams``, as the daemon decides);
- ``progressive_exact`` (``--exact-model``, a bound, not a product method): the same, but the
  doubly robust estimates' outcome model is the world's exact expected outcome of every route
  on every context. No outcome model can do better: it shows the fewest trajectories a valid
  progressive decision can need, whatever the learner.

The world is the project simulator's (``memabrad.sim``): a pool of contexts with the exact
expected reward, error rate and latency of every route; streams draw contexts from the
pool uniformly, so a policy's true value is its exact mean over the pool. Logging is the
simulator's agent (epsilon-greedy, 0.3, over its rule). Challengers are fixed
deterministic policies built to be truly better by a chosen reward margin while never
raising a task's expected error rate or latency above the rule's; the no-difference
world gives every route the rule's outcome, so no policy can win. The outcome model of
the doubly robust estimates is a per task-type x route running mean of the logged
outcomes (a stand-in for the learner's heads; it is predictable: trajectory ``i`` is
scored by the means of trajectories before ``i``).

Reported: trajectories to the first promotion (median, 90th percentile; a look every
``--look`` trajectories), false promotions over the whole look schedule, coverage of the
reported intervals (progressive: at every look at once; holdout: at each look), bias of
each estimator at the last look. ``--reps`` repetitions per scenario (200 by default).

    .venv/bin/python bench/power.py            # table + bench/power-results.json
    .venv/bin/python bench/power.py --reps 20  # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memabrad.evaluation.compare import METRICS, BenchmarkResult, Diagnostics, PolicyEstimate  # noqa: E402
from memabrad.evaluation.estimators import Interval, mean_interval  # noqa: E402
from memabrad.evaluation.sequential import SequentialSettings, stream_results  # noqa: E402
from memabrad.learning.progressive import RESTART_AT, ProgressiveEvidence  # noqa: E402
from memabrad.promotion.evaluation import decide_streams  # noqa: E402
from memabrad.promotion.policy import PolicySettings, PromotionPolicy  # noqa: E402
from memabrad.sim.generator import ContextStream  # noqa: E402
from memabrad.sim.policies import fixed_policy  # noqa: E402
from memabrad.sim.world import DEFAULT_ROUTES, LATENCY_SIGMA, REWARD_CONCENTRATION, TASK_TYPES, default_world  # noqa: E402
from memabrad.stats.moments import Moments  # noqa: E402

EPSILON = 0.3
HOLDOUT = 0.2
WINDOW = 5000
ERROR_SLACK = 0.01
LATENCY_SLACK_MS = 100.0
MISTAKES = 0.3
METHODS = ("holdout", "progressive")
EXACT = "progressive_exact"  # --exact-model: the progressive method with the exact outcome model


@dataclass(frozen=True)
class Pool:
    """Contexts with exact expected outcomes of every route (NaN where a route is not a candidate)."""

    types: np.ndarray  # (n,) task-type index
    allowed: np.ndarray  # (n, K) bool
    quality: np.ndarray  # (n, K) reward given no error
    error: np.ndarray  # (n, K)
    latency: np.ndarray  # (n, K)
    greedy: np.ndarray  # (n,) column of the logging rule's route
    epsilon: float = EPSILON  # the logging agent's exploration, spread evenly over the task's candidates

    @property
    def reward(self) -> np.ndarray:
        return (1.0 - self.error) * self.quality

    def flat(self) -> Pool:
        """The no-difference world: every route has the rule's outcome."""
        rows = np.arange(len(self.types))

        def spread(a: np.ndarray) -> np.ndarray:
            return np.where(self.allowed, a[rows, self.greedy][:, None], np.nan)
        return replace(self, quality=spread(self.quality), error=spread(self.error), latency=spread(self.latency))

    def logging_probs(self) -> np.ndarray:
        k = self.allowed.sum(1, keepdims=True)
        probs = np.where(self.allowed, self.epsilon / k, 0.0)
        probs[np.arange(len(self.types)), self.greedy] += 1.0 - self.epsilon
        return probs

    def value(self, cols: np.ndarray | None) -> tuple[float, float, float]:
        """Exact (reward, error rate, latency) of a deterministic policy (None: the logging agent)."""
        rows = np.arange(len(self.types))
        if cols is None:
            p = self.logging_probs()
            return tuple(float(np.nansum(p * m, 1).mean()) for m in (self.reward, self.error, self.latency))  # type: ignore[return-value]
        return tuple(float(m[rows, cols].mean()) for m in (self.reward, self.error, self.latency))  # type: ignore[return-value]


def build_pool(n: int, seed: int = 2024) -> Pool:
    world = default_world()
    routes = list(DEFAULT_ROUTES)
    col = {r: j for j, r in enumerate(routes)}
    stream = ContextStream(world, routes, seed)
    k = len(routes)
    types = np.zeros(n, np.int64)
    allowed = np.zeros((n, k), bool)
    quality, error, latency = (np.full((n, k), np.nan) for _ in range(3))
    greedy = np.zeros(n, np.int64)
    tindex = {t: i for i, t in enumerate(TASK_TYPES)}
    for i in range(n):
        task, cands, ctx = stream.next()
        types[i] = tindex[task["task_type"]]
        greedy[i] = col[fixed_policy(task, cands)]
        for r in cands:
            j = col[r]
            allowed[i, j] = True
            o = world.expected_outcome(ctx, r)
            error[i, j] = o.error_rate
            quality[i, j] = o.reward / (1.0 - o.error_rate) if o.error_rate < 1.0 else 0.0
            latency[i, j] = o.latency_ms
    return Pool(types, allowed, quality, error, latency, greedy)


def better_policy(pool: Pool, margin: float, mistakes: float = 0.0) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A deterministic policy truly ``margin`` better in reward than the logging agent whose every choice has
    an expected error rate at most ``ERROR_SLACK`` and a latency at most ``LATENCY_SLACK_MS`` above the rule's
    route on that task (the guardrails' true deltas stay well inside their margins; reported).

    ``mistakes``: share of tasks first sent to a random harmless candidate, as an imperfect learned router
    would, before better routes are added until the margin is reached (more deviations from the logging
    agent: more importance weight to pay, harder to judge)."""
    rows = np.arange(len(pool.types))
    g = pool.greedy.copy()
    if mistakes > 0:
        rng = np.random.default_rng(11)
        pick = rng.random(len(rows)) < mistakes
        ok = pool.allowed & (pool.error <= pool.error[rows, pool.greedy][:, None] + ERROR_SLACK) & (
            pool.latency <= pool.latency[rows, pool.greedy][:, None] + LATENCY_SLACK_MS)
        rand = np.where(ok, rng.random(ok.shape), -1.0).argmax(1)
        g[pick] = rand[pick]
    rule = pool.greedy
    safe = (pool.allowed & (pool.error <= pool.error[rows, rule][:, None] + ERROR_SLACK)
            & (pool.latency <= pool.latency[rows, rule][:, None] + LATENCY_SLACK_MS))
    best = np.where(safe, pool.reward, -np.inf).argmax(1)
    gain = pool.reward[rows, best] - pool.reward[rows, g]
    base = pool.value(None)[0]
    need = margin - (pool.reward[rows, g].mean() - base)
    # switch tasks in a seeded random order, not the biggest gains first: a typical challenger, not the one
    # that reaches the margin with the fewest deviations (fewer deviations are easier to judge)
    order = np.random.default_rng(7).permutation(len(rows))
    order = order[gain[order] > 0]
    cum = np.cumsum(gain[order]) / len(rows)
    m = int(np.searchsorted(cum, need)) + 1 if need > 0 else 0
    if need > 0 and m > len(rows):
        raise ValueError(f"no harmless policy is {margin} better (at most {cum[-1] + margin - need:.3f})")
    cols = g.copy()
    cols[order[:m]] = best[order[:m]]
    return cols, pool.value(cols)


@dataclass
class Stream:
    idx: np.ndarray
    logged: np.ndarray
    p: np.ndarray
    y: np.ndarray  # (T, 3) reward, error, latency
    holdout: np.ndarray


def draw(pool: Pool, T: int, rng: np.random.Generator) -> Stream:
    n = len(pool.types)
    idx = rng.integers(0, n, T)
    probs = pool.logging_probs()[idx]
    u = rng.random(T)[:, None]
    logged = (probs.cumsum(1) < u).sum(1)
    logged = np.minimum(logged, probs.shape[1] - 1)
    p = probs[np.arange(T), logged]
    q = np.clip(pool.quality[idx, logged], 1e-6, 1 - 1e-6)
    e = pool.error[idx, logged]
    lat = pool.latency[idx, logged]
    err = rng.random(T) < e
    k = REWARD_CONCENTRATION
    reward = np.where(err, 0.0, rng.beta(q * k, (1 - q) * k))
    latency = rng.lognormal(np.log(lat) - 0.5 * LATENCY_SIGMA ** 2, LATENCY_SIGMA)
    y = np.stack([reward, err.astype(float), latency], 1)
    return Stream(idx, logged, p, y, rng.random(T) < HOLDOUT)


def prequential_means(pool: Pool, s: Stream, train: np.ndarray) -> np.ndarray:
    """(T, K, 3): per task-type x route mean of the *earlier* logged outcomes among ``train`` rows, else the
    earlier overall mean (0 before anything)."""
    T, K = len(s.idx), pool.allowed.shape[1]
    types = pool.types[s.idx]
    out = np.zeros((T, K, 3))
    w = train.astype(float)
    tot_n = np.concatenate([[0.0], np.cumsum(w)[:-1]])
    tot_y = np.vstack([np.zeros(3), np.cumsum(s.y * w[:, None], 0)[:-1]])
    overall = tot_y / np.maximum(tot_n, 1.0)[:, None]
    for t in range(len(TASK_TYPES)):
        in_t = types == t
        for a in range(K):
            hit = in_t & (s.logged == a) & train
            c_n = np.concatenate([[0.0], np.cumsum(hit)[:-1]])
            c_y = np.vstack([np.zeros(3), np.cumsum(s.y * hit[:, None], 0)[:-1]])
            mean = np.where(c_n[:, None] > 0, c_y / np.maximum(c_n, 1.0)[:, None], overall)
            out[in_t, a] = mean[in_t]
    return out


def influences(s: Stream, rows: np.ndarray, cols: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(len(rows), 3) doubly robust influence values of a deterministic policy's columns."""
    r = np.arange(len(rows))
    match = cols == s.logged[rows]
    q_pi = q[r, cols]
    q_log = q[r, s.logged[rows]]
    return q_pi + np.where(match[:, None], (s.y[rows] - q_log) / s.p[rows][:, None], 0.0)


def _moments(x: np.ndarray) -> Moments:
    n = len(x)
    if n == 0:
        return Moments()
    mean = float(x.mean())
    return Moments(n, mean, float(((x - mean) ** 2).sum()))


def _evidence(s: Stream, cols_idx: np.ndarray, q: np.ndarray, end: int) -> ProgressiveEvidence:
    """The progressive evidence of the first ``end`` trajectories, as the learner would hold it."""
    rows = np.arange(end)
    phi_ch = influences(s, rows, cols_idx[:end], q[:end])
    phi_bl = s.y[:end]
    match = cols_idx[:end] == s.logged[:end]
    w = np.where(match, 1.0 / s.p[:end], 0.0)
    q_pi_err = q[rows, cols_idx[:end], 1]
    q_log_err = q[rows, s.logged[:end], 1]
    coef = w - 1.0  # the logging agent is the baseline: difference = c + coef * (y - q)
    p = s.p[:end]
    unseen = np.where(match | (p >= 1.0), 0.0, p / np.maximum(1.0 - p, 1e-12))
    resid = s.y[:end] - q[rows, s.logged[:end]]
    r2 = resid * resid
    k = q.shape[1]
    logged = s.logged[:end]
    # per route: the challenger's unmatched picks' factors, times logged, squared residuals when logged
    noise = np.column_stack([np.bincount(cols_idx[:end], weights=unseen, minlength=k),
                             np.bincount(logged, minlength=k)]
                            + [np.bincount(logged, weights=r2[:, m], minlength=k) for m in range(3)])
    return ProgressiveEvidence(
        unseen=float(unseen.sum()), residual_sq=[float(v) for v in r2.sum(0)],
        noise={str(a): [float(v) for v in row] for a, row in enumerate(noise) if row[0] > 0 or row[1] > 0},
        error_smooth=_moments(q_pi_err - q_log_err),
        error_noise=float((coef * coef * q_log_err * (1.0 - q_log_err)).sum()),
        challenger=[_moments(phi_ch[:, m]) for m in range(3)],
        baseline=[_moments(phi_bl[:, m]) for m in range(3)],
        delta=[_moments(phi_ch[:, m] - phi_bl[:, m]) for m in range(3)],
        weight_sum=float(w.sum()), weight_sq=float((w * w).sum()), max_weight=float(w.max()) if end else 0.0,
        matches=int(match.sum()),
    )


def progressive_results(s: Stream, cols_idx: np.ndarray, q: np.ndarray, look: int, k: int,
                        seq: SequentialSettings, holdout: BenchmarkResult, min_n: int) -> list[BenchmarkResult]:
    """The daemon's streams at look ``k`` (one every ``look`` trajectories): the whole evidence, and the
    evidence since each restart size (``RESTART_AT``) reached so far, as the daemon keeps them."""
    ev = _evidence(s, cols_idx, q, k * look)
    ev.looks = k
    ev.restarts = [((m - 1) // look, _evidence(s, cols_idx, q, m)._core_state())
                   for m in sorted(RESTART_AT) if m <= k * look]
    return stream_results(ev, seq, min_trajectories=min_n, holdout=holdout)


def holdout_result(s: Stream, cols_idx: np.ndarray, pool: Pool, end: int, confidence: float) -> BenchmarkResult:
    """Today's benchmark: the last ``WINDOW`` held-out tasks before ``end``, an outcome model trained on the
    rest, DR influences, fixed-n normal intervals."""
    held = np.flatnonzero(s.holdout[:end])[-WINDOW:]
    train = ~s.holdout[:end]
    types = pool.types[s.idx[:end]]
    K = pool.allowed.shape[1]
    overall = s.y[:end][train].mean(0) if train.any() else np.zeros(3)
    key = (types * K + s.logged[:end])[train]
    cells = len(TASK_TYPES) * K
    counts = np.bincount(key, minlength=cells).astype(float)
    sums = np.stack([np.bincount(key, weights=s.y[:end][train][:, m], minlength=cells) for m in range(3)], 1)
    q_tab = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1.0)[:, None], overall).reshape(
        len(TASK_TYPES), K, 3)
    q = q_tab[types[held]]
    phi_ch = influences(s, held, cols_idx[held], q)
    phi_bl = s.y[held]
    match = cols_idx[held] == s.logged[held]
    w = np.where(match, 1.0 / s.p[held], 0.0)
    ess = float(w.sum() ** 2 / (w * w).sum()) if (w * w).sum() > 0 else 0.0

    def est(name: str, phi: np.ndarray) -> PolicyEstimate:
        return PolicyEstimate(name, *(mean_interval(phi[:, m], confidence) for m in range(3)))
    return BenchmarkResult(
        task_count=len(held), logged_count=len(held), suite_count=0, estimator="dr", confidence=confidence,
        imputed_propensities=0, baseline=est("logging", phi_bl), challenger=est("challenger", phi_ch),
        deltas={m: mean_interval(phi_ch[:, i] - phi_bl[:, i], confidence) for i, m in enumerate(METRICS)},
        challenger_diagnostics=Diagnostics(ess, float(w.max()) if len(w) else 0.0,
                                           float(match.mean()) if len(w) else 0.0, 0, []),
    )


def efficiency_floor(pool: Pool, cols: np.ndarray, settings: PolicySettings) -> dict[str, Any]:
    """How many trajectories one fixed-n look would need if the estimate were at its best.

    For a deterministic challenger, any unbiased off-policy estimate of a guardrail's difference
    has per-trajectory variance at least the semiparametric efficiency bound, reached by doubly
    robust estimates whose outcome model is the exact truth: ``Var_x(c) + E[mu(a|x) (w_a - 1)^2 v_a]``
    with ``c`` the exact difference on context ``x``, ``w_a`` the challenger's importance weight
    and ``v_a`` the outcome variance of route ``a``. A look with ``n`` trajectories clears the gate
    (in expectation) once ``z * sd / sqrt(n)`` is below the distance from the true difference to
    the threshold. The error-rate gate binds here; this is the floor no valid method goes under."""
    probs = pool.logging_probs()
    rows = np.arange(len(cols))
    e = np.nan_to_num(pool.error)
    c = e[rows, cols] - (probs * e).sum(1)
    noise = np.zeros(len(cols))
    for a in range(probs.shape[1]):
        mu = probs[:, a]
        w = np.where(cols == a, 1.0 / np.where(mu > 0, mu, 1.0), 0.0)
        noise += np.where(mu > 0, mu * (w - 1.0) ** 2 * e[:, a] * (1.0 - e[:, a]), 0.0)
    sd = math.sqrt(float(c.var() + noise.mean()))
    truth = pool.value(cols)[1] - pool.value(None)[1]
    distance = settings.max_error_rate_increase - truth
    need = (1.959964 * sd / distance) ** 2 if distance > 0 else math.inf
    return {"error_rate_sd_at_efficiency_bound": round(sd, 4), "distance_to_threshold": round(distance, 4),
            "fixed_n_single_look_95": round(need), "one_sided_single_look_95": round(need * (1.644854 / 1.959964) ** 2)}


def _covers(iv: Interval, truth: float) -> bool:
    return iv.ci_low <= truth <= iv.ci_high


def exact_means(pool: Pool, s: Stream) -> np.ndarray:
    """(T, K, 3): every route's exact expected (reward, error, latency) on each trajectory's context (0 where
    the route is not offered): the outcome model no learner can beat."""
    return np.nan_to_num(np.stack([pool.reward, pool.error, pool.latency], 2)[s.idx])


def run_rep(pool: Pool, cols: np.ndarray, truth: tuple[float, ...], T: int, look: int, seed: int,
            settings: PolicySettings, methods: tuple[str, ...] = METHODS) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    s = draw(pool, T, rng)
    learned = prequential_means(pool, s, ~s.holdout)  # like the learner: held-out trajectories are scored, not learned
    cols_idx = cols[s.idx]
    seq = SequentialSettings(0.95, settings.target_n)
    out: dict[str, Any] = {}
    for method in methods:
        q = exact_means(pool, s) if method == EXACT else learned
        policy = PromotionPolicy(replace(settings, method="holdout" if method == "holdout" else "progressive"))
        first = None
        covered_all = {m: True for m in METRICS}
        per_look_cover = {m: [] for m in METRICS}
        last: BenchmarkResult | None = None
        for k, end in enumerate(range(look, T + 1, look), 1):
            hold = holdout_result(s, cols_idx, pool, end, 0.95)
            if method == "holdout":
                res, decision = hold, policy.decide(hold)
            else:
                res, decision = decide_streams(policy, progressive_results(
                    s, cols_idx, q, look, k, seq, hold, settings.required_task_count))
            for i, m in enumerate(METRICS):
                c = _covers(res.deltas[m], truth[i])
                covered_all[m] &= c
                per_look_cover[m].append(c)
            if first is None and decision.verdict == "promote":
                first = end
            last = res
        assert last is not None
        out[method] = {
            "first_promotion": first,
            "covered_every_look": covered_all,
            "coverage_per_look": {m: float(np.mean(v)) for m, v in per_look_cover.items()},
            "last_estimate": {m: last.deltas[m].value for m in METRICS},
        }
    return out


def summarise(reps: list[dict[str, Any]], truth: tuple[float, ...], T: int,
              methods: tuple[str, ...] = METHODS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method in methods:
        firsts = [r[method]["first_promotion"] for r in reps]
        promoted = [f for f in firsts if f is not None]
        # a run that never promoted counts as beyond the horizon
        padded = np.array([f if f is not None else math.inf for f in firsts], float)
        est = {m: np.array([r[method]["last_estimate"][m] for r in reps]) for m in METRICS}
        out[method] = {
            "promoted_share": len(promoted) / len(reps),
            "median_first_promotion": float(np.median(padded)) if len(promoted) * 2 > len(reps) else None,
            "p90_first_promotion": float(np.quantile(padded, 0.9)) if len(promoted) >= 0.9 * len(reps) else None,
            "coverage_every_look": {m: float(np.mean([r[method]["covered_every_look"][m] for r in reps]))
                                    for m in METRICS},
            "coverage_per_look": {m: float(np.mean([r[method]["coverage_per_look"][m] for r in reps]))
                                  for m in METRICS},
            "bias_at_last_look": {m: float(est[m].mean() - truth[i]) for i, m in enumerate(METRICS)},
            "bias_mc_se": {m: float(est[m].std(ddof=1) / math.sqrt(len(reps))) for m in METRICS},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--pool", type=int, default=20000)
    ap.add_argument("--look", type=int, default=1000,
                    help="trajectories between looks on the no-difference workload (min_new_trajectories)")
    ap.add_argument("--power-look", type=int, default=250,
                    help="trajectories between looks when measuring power (finer than the daemon's default "
                         "so the time to promotion is resolved better than 1,000)")
    ap.add_argument("--horizon", type=int, default=50000)
    ap.add_argument("--power-horizon", type=int, default=30000)
    ap.add_argument("--out", default=str(Path(__file__).with_name("power-results.json")))
    ap.add_argument("--floors-only", action="store_true",
                    help="only compute the error gate's efficiency floor per scenario and add it to --out")
    ap.add_argument("--exact-model", action="store_true",
                    help="also run the progressive method with the exact outcome model (the bound on any learner)")
    ap.add_argument("--scenarios", help="comma-separated scenario names (default: all)")
    ap.add_argument("--target-n", type=int, default=None,
                    help="where the confidence sequences are tightest (evaluation.target_n; default: the product's)")
    ap.add_argument("--epsilon", type=float, default=EPSILON,
                    help="the logging agent's exploration (0.05 over six routes: importance weights up to 120)")
    ap.add_argument("--trajectories-per-weight", type=float, default=None,
                    help="evaluation.trajectories_per_weight (0: the fixed max_importance_weight alone; "
                         "default: the product's)")
    args = ap.parse_args(argv)
    methods = (*METHODS, EXACT) if args.exact_model else METHODS
    t0 = time.time()
    pool = replace(build_pool(args.pool), epsilon=args.epsilon)
    settings = PolicySettings()
    if args.target_n is not None:
        settings = replace(settings, target_n=args.target_n)
    if args.trajectories_per_weight is not None:
        settings = replace(settings, trajectories_per_weight=args.trajectories_per_weight)
    scenarios: list[tuple[str, Pool, np.ndarray, int, int]] = []
    for margin in (0.15, 0.05):
        for mistakes in (0.0, MISTAKES):
            cols, _ = better_policy(pool, margin, mistakes)
            label = f"better_by_{margin:.2f}" + (f"_with_{mistakes:.0%}_mistakes" if mistakes else "")
            scenarios.append((label, pool, cols, args.power_horizon, args.power_look))
    flat = pool.flat()
    scenarios.append(("no_difference", flat, better_policy(pool, 0.15)[0], args.horizon, args.look))
    if args.scenarios:
        wanted = set(args.scenarios.split(","))
        scenarios = [sc for sc in scenarios if sc[0] in wanted]
    results: dict[str, Any] = {"settings": {"reps": args.reps, "epsilon": args.epsilon,
                                            "holdout_fraction": HOLDOUT, "window_size": WINDOW,
                                            "gates": settings.__dict__, "pool_contexts": args.pool}}
    if args.floors_only:  # cheap: add the floors to the last full run's JSON
        saved = json.loads(Path(args.out).read_text())
        for name, pl, cols, _, _ in scenarios:
            saved[name]["error_gate_floor"] = efficiency_floor(pl, cols, settings)
            print(name, saved[name]["error_gate_floor"])
        Path(args.out).write_text(json.dumps(saved, indent=2) + "\n")
        return 0
    for name, pl, cols, T, look in scenarios:
        log_v, ch_v = pl.value(None), pl.value(cols)
        truth = tuple(c - lg for c, lg in zip(ch_v, log_v, strict=True))
        reps = [run_rep(pl, cols, truth, T, look, 1000 + r, settings, methods) for r in range(args.reps)]
        summary = summarise(reps, truth, T, methods)
        results[name] = {"true_delta": dict(zip(METRICS, truth, strict=True)), "horizon": T, "look_every": look,
                         "deviates_on": float((cols != pl.greedy).mean()),
                         "error_gate_floor": efficiency_floor(pl, cols, settings), **summary}
        floor = results[name]["error_gate_floor"]
        print(f"{name}: true deltas reward {truth[0]:+.4f} error {truth[1]:+.4f} latency {truth[2]:+.1f} ms "
              f"(horizon {T}, {time.time() - t0:.0f} s); error gate at the efficiency bound: one fixed-n look "
              f"needs {floor['fixed_n_single_look_95']:,}", flush=True)
        for method in methods:
            m = summary[method]
            print(f"  {method:12s} promoted {m['promoted_share']:6.1%}  median {m['median_first_promotion']}  "
                  f"p90 {m['p90_first_promotion']}  cover(all looks) "
                  + " ".join(f"{k}:{v:.3f}" for k, v in m["coverage_every_look"].items())
                  + "  bias " + " ".join(f"{k}:{v:+.4f}" for k, v in m["bias_at_last_look"].items()), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
