"""Progressive evidence and its confidence sequences: unbiased, valid at every look, restorable."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import numpy as np
import pytest

from memabrad.config import load_config
from memabrad.evaluation.sequential import SequentialSettings, sequential_result
from memabrad.learning.learner import RouterLearner
from memabrad.learning.progressive import METRICS, NOISE_PRIOR, ProgressiveEvidence
from memabrad.promotion.evaluation import evaluate
from memabrad.promotion.policy import PolicySettings, PromotionPolicy
from memabrad.sim import Simulator
from memabrad.stats.confidence_sequence import asymptotic_cs, cs_half_width, cs_one_sided_width
from memabrad.stats.moments import Moments
from memabrad.wire.parse import parse_trajectory


def _trajectories(n: int, seed: int = 3) -> list:
    return [parse_trajectory(json.dumps(row)) for row in Simulator(seed=seed).generate(n)]


def test_moments_match_numpy_and_merge() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(6.0, 1.0, 5000)  # latency-sized values
    a, b = Moments(), Moments()
    for v in x[:1700]:
        a.add(float(v))
    for v in x[1700:]:
        b.add(float(v))
    m = a.merge(b)
    assert m.n == 5000
    assert m.mean == pytest.approx(x.mean(), rel=1e-12)
    assert m.variance == pytest.approx(x.var(ddof=1), rel=1e-9)
    assert Moments.from_state(json.loads(json.dumps(m.to_state()))) == m


def test_confidence_sequence_is_wider_than_a_fixed_interval_and_shrinks() -> None:
    z = 1.959964
    widths = [cs_half_width(1.0, n, 0.05, 5000) for n in (100, 1000, 10000, 100000)]
    assert widths == sorted(widths, reverse=True)
    for n, w in zip((100, 1000, 10000, 100000), widths, strict=True):
        assert w > z / math.sqrt(n)  # the price of looking at every n
    assert cs_half_width(1.0, 0, 0.05, 5000) == math.inf


def test_time_uniform_coverage_on_heavy_tailed_importance_weighted_values() -> None:
    """200 streams of IPS-like values (mostly 0, now and then 1/p): the sequence must contain the true mean
    at *every* one of 50 looks in at least 93% of them, where a fixed-n interval fails far more often."""
    rng = np.random.default_rng(42)
    p, mu, looks, step = 0.05, 0.3, 50, 400
    cs_ok = fixed_ok = 0
    for _ in range(200):
        x = np.where(rng.random(looks * step) < p, rng.random(looks * step) < mu, 0.0) / p
        c = np.cumsum(x)
        c2 = np.cumsum(x * x)
        ok_cs = ok_fixed = True
        for k in range(1, looks + 1):
            n = k * step
            mean = c[n - 1] / n
            sd = math.sqrt(max(c2[n - 1] / n - mean * mean, 0.0) * n / (n - 1))
            lo, hi = asymptotic_cs(mean, sd, n, 0.05, 5000)
            ok_cs &= lo <= mu <= hi
            h = 1.959964 * sd / math.sqrt(n)
            ok_fixed &= mean - h <= mu <= mean + h
        cs_ok += ok_cs
        fixed_ok += ok_fixed
    assert cs_ok >= 0.93 * 200
    assert fixed_ok < cs_ok


def _thin_exploration_coverage(reps: int, floor: bool, per_route: bool = True,
                               noise: tuple[float, float] | None = None) -> float:
    """Share of ``reps`` streams whose reward-difference sequence covers the truth at every look (8 looks of
    250): an agent exploring 5 % over six routes (weight 120 on the rare ones), a challenger that moves 40 %
    of the contexts to a better rare route, an outcome model that knows nothing (0.5 everywhere).
    ``per_route``: the floor knows the logged routes (their own noise), else only the pooled noise;
    ``noise``: Gaussian outcomes with this spread on the agent's route and on the rare ones, not coins."""
    pool_rng = np.random.default_rng(7)
    k, eps, n_ctx = 6, 0.05, 100
    means = pool_rng.uniform(0.2, 0.8, (n_ctx, k))
    greedy = np.zeros(n_ctx, int)
    pick = np.where(np.arange(n_ctx) < 40, means.argmax(1), greedy)
    probs = np.full((n_ctx, k), eps / k)
    probs[:, 0] += 1.0 - eps
    truth = float(means[np.arange(n_ctx), pick].mean() - (probs * means).sum(1).mean())
    settings = SequentialSettings(0.95, 5000)
    covered = 0
    for rep in range(reps):
        rng = np.random.default_rng(1000 + rep)
        ev, ok = ProgressiveEvidence(), True
        ctx = rng.integers(0, n_ctx, 2000)
        u = rng.random(2000)
        coins = rng.random(2000) if noise is None else rng.standard_normal(2000)
        for i in range(2000):
            c = ctx[i]
            a = int(min((probs[c].cumsum() < u[i]).sum(), k - 1))
            p = probs[c, a]
            if noise is None:
                y = float(coins[i] < means[c, a])
            else:
                y = float(means[c, a] + noise[0 if a == 0 else 1] * coins[i])
            match = a == pick[c]
            phi = 0.5 + (y - 0.5) / p if match else 0.5
            unseen = ((str(pick[c]), p / (1.0 - p)),) if floor and not match else ()
            ev.add((phi, 0.0, 0.0), (y, 0.0, 0.0), weight=1.0 / p if match else 0.0, unsupported=False, at=str(i),
                   unseen=unseen, residual_sq=((y - 0.5) ** 2, 0.0, 0.0), logged=str(a) if per_route else None)
            if (i + 1) % 250 == 0:
                d = sequential_result(ev, settings).deltas["reward"]
                ok &= d.ci_low <= truth <= d.ci_high
        covered += ok
    return covered / reps


def test_a_floor_from_the_logged_propensities_keeps_coverage_when_the_agent_explores_little() -> None:
    """Before the agent happens to log a rare route the challenger prefers, the sample variance knows nothing
    of its weight of 120 and the sequence is confidently wrong; the floor that the logged propensities give
    (``ProgressiveEvidence.unseen_variance``) keeps it covering at every look."""
    with_floor = _thin_exploration_coverage(150, floor=True)
    assert with_floor >= 0.93
    assert _thin_exploration_coverage(150, floor=False) < with_floor - 0.05


def test_the_floor_takes_the_noise_of_the_rare_routes_a_challenger_picks() -> None:
    """The agent's own route is quiet (spread 0.1), the rare routes the challenger prefers are not (0.75):
    a floor on the pooled noise, which is nearly all the agent's route's, leaves the sequence too narrow
    until the rare routes' weights of 120 have been seen; on the picked routes' own noise it covers."""
    per_route = _thin_exploration_coverage(150, floor=True, noise=(0.1, 0.75))
    assert per_route >= 0.95
    assert _thin_exploration_coverage(150, floor=True, per_route=False, noise=(0.1, 0.75)) < per_route - 0.05


def test_the_unseen_variance_is_the_logged_propensities_bound_times_the_residual_noise() -> None:
    ev = ProgressiveEvidence()
    for i in range(10):  # the greedy route logged at 0.95, the challenger elsewhere: factor 0.95 / 0.05 = 19
        ev.add((0.5, 0.0, 0.0), (1.0, 0.0, 0.0), weight=0.0, unsupported=False, at=str(i), unseen=(("b", 19.0),),
               residual_sq=(0.25, 0.0, 100.0), logged="a")
    # the pick "b" was never logged: its noise is the pooled one
    assert ev.unseen_variance(0) == pytest.approx(19.0 * 0.25)
    assert ev.unseen_variance(2) == pytest.approx(1900.0)
    back = ProgressiveEvidence.from_state(json.loads(json.dumps(ev.to_state())))
    assert back.unseen_variance(0) == ev.unseen_variance(0)
    old = ev.to_state()
    del old["unseen"], old["noise"]  # a checkpoint written before the floor: none, as it was judged then
    assert math.isnan(ProgressiveEvidence.from_state(old).unseen_variance(0))


def test_the_unseen_variance_takes_the_noise_of_the_route_picked_not_of_the_route_logged() -> None:
    """A slow tool's latency varies far more than the agent's usual route's: once the tool has been logged
    its own noise (shrunk toward the pooled one by ``NOISE_PRIOR``) stands under its picks, never less than
    the pooled noise; a checkpoint without the routes' noise keeps the pooled floor it was judged with."""
    def evidence(tool_sq: float) -> ProgressiveEvidence:
        ev = ProgressiveEvidence()
        for i in range(95):
            ev.add((0.5, 0.0, 0.0), (1.0, 0.0, 0.0), weight=0.0, unsupported=False, at=str(i),
                   unseen=(("tool", 19.0),), residual_sq=(0.0, 0.0, 100.0), logged="answer")
        for i in range(5):
            ev.add((0.5, 0.0, 0.0), (1.0, 0.0, 0.0), weight=20.0, unsupported=False, at=f"t{i}",
                   residual_sq=(0.0, 0.0, tool_sq), logged="tool")
        return ev

    n, factor = 100, 95 * 19.0
    noisy = evidence(10_000.0)
    pooled = (95 * 100.0 + 5 * 10_000.0) / n
    tool = (5 * 10_000.0 + NOISE_PRIOR * pooled) / (5 + NOISE_PRIOR)
    assert noisy.unseen_variance(2) == pytest.approx(factor * tool / n)
    assert noisy.unseen_variance(2) > factor * pooled / n
    quiet = evidence(1.0)  # a quieter pick: the pooled noise, never below it
    assert quiet.unseen_variance(2) == pytest.approx(factor * ((95 * 100.0 + 5.0) / n) / n)
    back = ProgressiveEvidence.from_state(json.loads(json.dumps(noisy.to_state())))
    assert back.unseen_variance(2) == noisy.unseen_variance(2)
    old = noisy.to_state()
    del old["noise"]
    assert ProgressiveEvidence.from_state(old).unseen_variance(2) == pytest.approx(factor * pooled / n)
    # a stream since a restart takes the routes' sums since then
    noisy.restarts.append((0, evidence(10_000.0)._core_state()))
    later = evidence(10_000.0)
    later.restarts = noisy.restarts
    for i in range(100, 200):
        later.add((0.5, 0.0, 0.0), (1.0, 0.0, 0.0), weight=0.0, unsupported=False, at=str(i),
                  unseen=(("tool", 19.0),), residual_sq=(0.0, 0.0, 100.0), logged="answer")
    since = later.streams()[1]
    assert since.n == 100 and since.noise["tool"][:2] == [100 * 19.0, 0.0]
    assert since.unseen_variance(2) == pytest.approx(100 * 19.0 * 100.0 / 100)


def test_one_sided_bound_holds_at_every_look_and_is_tighter_than_the_two_sided_sequence() -> None:
    """400 seeded streams of the same heavy-tailed values: the one-sided lower bound at alpha 0.05 may
    lie above the true mean at some look in at most 5% of them (plus Monte-Carlo slack), and it sits
    closer to the mean than the two-sided sequence's lower end, which is what buys the power."""
    rng = np.random.default_rng(7)
    p, mu, looks, step, reps = 0.05, 0.3, 50, 400, 400
    wrong_one = wrong_two = 0
    for _ in range(reps):
        x = np.where(rng.random(looks * step) < p, rng.random(looks * step) < mu, 0.0) / p
        c, c2 = np.cumsum(x), np.cumsum(x * x)
        bad_one = bad_two = False
        for k in range(1, looks + 1):
            n = k * step
            mean = c[n - 1] / n
            sd = math.sqrt(max(c2[n - 1] / n - mean * mean, 0.0) * n / (n - 1))
            bad_one |= mean - cs_one_sided_width(sd, n, 0.05, 5000) > mu
            bad_two |= asymptotic_cs(mean, sd, n, 0.05, 5000)[0] > mu
        wrong_one += bad_one
        wrong_two += bad_two
    assert wrong_one <= 0.05 * reps + 3 * math.sqrt(0.05 * 0.95 * reps)
    assert wrong_two <= wrong_one
    for n in (200, 1000, 5000, 50000):
        assert cs_one_sided_width(1.0, n, 0.05, 5000) < 0.97 * cs_half_width(1.0, n, 0.05, 5000)


def test_gates_compare_the_one_sided_bounds_and_report_the_interval() -> None:
    """An error-rate delta whose two-sided sequence straddles the margin but whose one-sided upper bound
    does not passes its gate; the benchmark still reports the two-sided interval."""
    ev = ProgressiveEvidence()
    rng = random.Random(3)
    for i in range(1500):
        err = 1.0 if rng.random() < 0.1 else 0.0
        ev.add((0.9, err, 500.0), (0.5, 1.0 if rng.random() < 0.1 else 0.0, 500.0), weight=1.0, unsupported=False,
               at=str(i))
    r = sequential_result(ev, SequentialSettings())
    d = r.deltas["error_rate"]
    assert d.bound_high is not None and d.bound_low is not None
    assert d.ci_low < d.bound_low < d.value < d.bound_high < d.ci_high
    margin = (d.bound_high + d.ci_high) / 2  # between the one-sided bound and the two-sided end
    decision = PromotionPolicy(PolicySettings(max_error_rate_increase=margin, min_reward_delta=0.01)).decide(r)
    gate = decision.gates["error_rate_delta"]
    assert gate.status == "pass" and gate.one_sided and gate.ci_high == d.bound_high
    assert gate.to_dict()["one_sided"] is True and gate.to_dict()["alpha"] == pytest.approx(0.05)
    assert "one-sided 95% bounds" in gate.reason
    assert r.to_dict()["deltas"]["error_rate"]["ci_high"] == pytest.approx(d.ci_high, abs=1e-6)
    assert r.sequential is not None and r.sequential["gate_bounds"].startswith("one-sided")


def test_learner_scores_every_trajectory_before_learning_it() -> None:
    cfg = load_config(None)
    learner = RouterLearner.new("default", cfg)
    learner.set_baseline(None)
    ts = _trajectories(600)
    first = ts[0]
    learner.observe(first)
    # the very first trajectory is scored by an untrained challenger: its pick is the smallest route name
    assert learner.progressive.n == 1
    for t in ts[1:]:
        learner.observe(t)
    ev = learner.progressive
    assert ev.n == 600 == learner.counters.learned  # training and held-out trajectories both count
    assert ev.baseline_version_id is None and ev.first_at == first.trajectory_id
    assert 0 < ev.matches < 600 and ev.max_weight <= 1 / 0.05 + 1e-9


def test_baseline_change_restarts_the_evidence_and_the_same_baseline_keeps_it() -> None:
    cfg = load_config(None)
    learner = RouterLearner.new("default", cfg)
    for t in _trajectories(300):
        learner.observe(t)
    assert learner.progressive.n == 300
    learner.set_baseline(None)  # the same comparison (logging agent): evidence kept
    assert learner.progressive.n == 300
    active = learner.challenger.clone()
    active.version_id = "default-v1"
    learner.set_baseline(active)
    assert learner.progressive.n == 0 and learner.progressive.baseline_version_id == "default-v1"


def test_evidence_survives_a_restore_exactly() -> None:
    """A checkpoint mid-stream, restored and fed the rest, ends with the same sums as an uninterrupted run."""
    cfg = load_config(None)
    ts = _trajectories(800, seed=5)
    a = RouterLearner.new("default", cfg)
    for t in ts:
        a.observe(t)
    b = RouterLearner.new("default", cfg)
    for t in ts[:450]:
        b.observe(t)
    b = RouterLearner.from_state(json.loads(json.dumps(b.to_state())), cfg)
    b.set_baseline(None)
    for t in ts[450:]:
        b.observe(t)
    assert b.progressive.to_state() == a.progressive.to_state()


def test_evaluation_judges_on_all_trajectories_with_anytime_intervals() -> None:
    cfg = load_config(None)
    learner = RouterLearner.new("default", cfg)
    learner.set_baseline(None)
    for t in _trajectories(3000, seed=9):
        learner.observe(t)
    ev = evaluate(learner.snapshot(), None, PolicySettings())
    r = ev.result
    assert r.method == "progressive" and r.task_count == 3000
    assert r.sequential is not None and r.sequential["looks"] == 1
    assert r.holdout is not None and 0 < r.holdout.task_count < 1000
    # the confidence sequence is wider than the fixed-n interval on the same values
    fixed = ProgressiveEvidence.from_state(learner.progressive.to_state())
    d = fixed.delta[0]
    assert r.deltas["reward"].half_width > 1.959964 * math.sqrt(d.variance / d.n)
    # the learner gathers the propensities' floor on every trajectory, and the report says where it held
    assert fixed.unseen > 0 and fixed.residual_sq[0] > 0 and fixed.residual_sq[2] > 0
    assert fixed.unseen_variance(0) > 0 and set(r.sequential["variance_floor_binds"]) <= set(METRICS)
    assert "holdout_check" in ev.decision.gates
    holdout = evaluate(learner.snapshot(), None, PolicySettings(method="holdout")).result
    assert holdout.method == "holdout" and holdout.sequential is None
    assert holdout.task_count == r.holdout.task_count


def test_evidence_for_another_baseline_counts_for_nothing() -> None:
    cfg = load_config(None)
    learner = RouterLearner.new("default", cfg)
    learner.set_baseline(None)
    for t in _trajectories(400):
        learner.observe(t)
    other = learner.challenger.clone()
    other.version_id = "default-v7"
    ev = evaluate(learner.snapshot(), other, PolicySettings())
    assert ev.result.task_count == 0
    assert ev.decision.verdict == "inconclusive"
    assert ev.decision.gates["task_count"].status == "inconclusive"
    # even where the hold-out window alone would contradict (the challenger is the baseline's twin, so
    # it is wholly short of a 0.5 reward margin), a look with no evidence of its own says so, not "reject"
    strict = PolicySettings(min_reward_delta=0.5)
    assert evaluate(learner.snapshot(), None, strict).decision.gates["holdout_check"].status == "fail"
    ev = evaluate(learner.snapshot(), other, strict)
    assert ev.decision.verdict == "inconclusive", ev.decision.reasons
    assert "waits for the evidence (0 of 200" in ev.decision.gates["holdout_check"].reason


def test_the_holdout_veto_blocks_a_model_its_own_heads_put_past_a_guardrail() -> None:
    """The newest model's predicted error-rate and latency deltas on the hold-out window (its own heads,
    no importance weights) are reported and veto it when past an allowance; under it they change nothing."""
    learner = RouterLearner.new("default", load_config(None))
    learner.set_baseline(None)
    for t in _trajectories(3000, seed=9):
        learner.observe(t)
    h = evaluate(learner.snapshot(), None, PolicySettings()).result.holdout
    assert h is not None and h.predicted_deltas is not None
    assert set(h.predicted_deltas) == {"reward", "error_rate", "latency_ms"}
    assert all(math.isfinite(v) for v in h.predicted_deltas.values())
    assert h.to_dict()["predicted_deltas"]["latency_ms"] == round(h.predicted_deltas["latency_ms"], 6)
    policy = PromotionPolicy(PolicySettings())
    plain = policy._holdout_gate(replace(h, predicted_deltas=None), 3000)
    under = policy._holdout_gate(replace(h, predicted_deltas={"reward": 0.1, "error_rate": 0.019,
                                                              "latency_ms": 249.0}), 3000)
    assert (under.status, under.reason) == (plain.status, plain.reason)
    over = policy._holdout_gate(replace(h, predicted_deltas={"reward": 0.1, "error_rate": 0.0,
                                                             "latency_ms": 260.0}), 3000)
    assert over.status == "inconclusive" and "latency_delta_ms predicted by the promoted model's own heads 260 > " \
        "max 250" in over.reason
    errs = policy._holdout_gate(replace(h, predicted_deltas={"reward": 0.1, "error_rate": 0.03,
                                                             "latency_ms": 0.0}), 3000)
    assert errs.status == "inconclusive" and "error_rate_delta predicted" in errs.reason


def test_unbiased_in_seeded_repetitions() -> None:
    """A fixed challenger on a two-context, three-route bandit with exact truth: the mean progressive delta
    estimate over 300 repetitions is within 3 Monte-Carlo standard errors of the truth for every metric."""
    truth_r = {("a", "x"): 0.2, ("a", "y"): 0.7, ("a", "z"): 0.4, ("b", "x"): 0.6, ("b", "y"): 0.3, ("b", "z"): 0.5}
    err = {("a", "x"): 0.02, ("a", "y"): 0.10, ("a", "z"): 0.05, ("b", "x"): 0.01, ("b", "y"): 0.2, ("b", "z"): 0.03}
    lat = {("a", "x"): 300.0, ("a", "y"): 900.0, ("a", "z"): 500.0, ("b", "x"): 400.0, ("b", "y"): 200.0,
           ("b", "z"): 650.0}
    routes = ("x", "y", "z")
    log_greedy = {"a": "x", "b": "y"}
    challenger = {"a": "y", "b": "x"}
    eps = 0.3

    def v(policy: dict[str, str] | None, table: dict) -> float:
        tot = 0.0
        for c in ("a", "b"):
            if policy is None:
                tot += sum((eps / 3 + (1 - eps) * (r == log_greedy[c])) * table[(c, r)] for r in routes)
            else:
                tot += table[(c, policy[c])]
        return tot / 2

    truth = [v(challenger, t) - v(None, t) for t in (truth_r, err, lat)]
    estimates = []
    for rep in range(300):
        rng = random.Random(rep)
        q: dict[tuple[str, str, int], Moments] = {}
        ev = ProgressiveEvidence()
        for i in range(400):
            c = rng.choice("ab")
            r = log_greedy[c] if rng.random() >= eps else rng.choice(routes)
            p = eps / 3 + (1 - eps) * (r == log_greedy[c])
            e = rng.random() < err[(c, r)]
            y = (0.0 if e else truth_r[(c, r)] / (1 - err[(c, r)]), float(e), rng.expovariate(1 / lat[(c, r)]))

            def qhat(route: str, metric: int, c: str = c, q: dict = q) -> float:
                m = q.get((c, route, metric))
                return m.mean if m is not None and m.n else 0.0
            pick = challenger[c]
            phi_ch = tuple(qhat(pick, k) + ((y[k] - qhat(r, k)) / p if pick == r else 0.0) for k in range(3))
            ev.add(phi_ch, y, weight=1 / p if pick == r else 0.0, unsupported=False, at=str(i))  # type: ignore[arg-type]
            for k in range(3):
                q.setdefault((c, r, k), Moments()).add(y[k])
        res = sequential_result(ev, SequentialSettings())
        estimates.append([res.deltas[m].value for m in ("reward", "error_rate", "latency_ms")])
    est = np.array(estimates)
    se = est.std(0, ddof=1) / math.sqrt(len(est))
    assert np.all(np.abs(est.mean(0) - np.array(truth)) < 3 * se), (est.mean(0), truth, se)


def test_frozen_scorer_chooses_as_the_router_does() -> None:
    """The baseline's precomputed scorer picks exactly the routes ``Router.best`` picks."""
    from memabrad.learning.frozen import FrozenScorer

    cfg = load_config(None)
    learner = RouterLearner.new("default", cfg)
    ts = _trajectories(3000, seed=11)
    for t in ts[:2500]:
        learner.observe(t)
    router = learner.challenger.clone()
    frozen = FrozenScorer(router)
    for t in ts[2500:]:
        x = router.featurizer.featurize(t.task, learner.case_index.hint(t.task.input))
        assert frozen.best(x, t.candidates, t.task.task_type) == router.best(x, t.candidates, t.task.task_type)
        fs, rs = frozen.scores(x, t.candidates, t.task.task_type), router.scores(x, t.candidates, t.task.task_type)
        assert fs == pytest.approx(rs, abs=1e-12)


def test_restart_streams_leave_the_untrained_stretch_out() -> None:
    """After 250, 500, 1,000, ... trajectories a further stream starts; a promotion may rest on it, at its
    share of alpha."""
    from memabrad.evaluation.sequential import stream_results
    from memabrad.promotion.policy import PromotionPolicy

    rng = np.random.default_rng(3)
    ev = ProgressiveEvidence()
    direct = ProgressiveEvidence()
    for i in range(4000):
        gain = -0.4 if i < 1000 else 0.05  # an untrained challenger first, then a slightly better one
        y = float(rng.random() < 0.5)
        phi_ch, phi_bl = (y + gain, 0.0, 500.0), (y, 0.0, 500.0)
        ev.add(phi_ch, phi_bl, weight=1.0, unsupported=False, at=str(i))
        if i >= 1000:
            direct.add(phi_ch, phi_bl, weight=1.0, unsupported=False, at=str(i))
        if i % 1000 == 999:
            ev.mark_look()
    streams = ev.streams()  # the whole, then since 250, 500, 1,000, 2,000 and 4,000 (empty)
    assert [s.start_n for s in streams] == [0, 250, 500, 1000, 2000, 4000]
    assert [s.n for s in streams] == [4000, 3750, 3500, 3000, 2000, 0]
    later = streams[3]
    assert later.n == direct.n == 3000 and later.start_look == 0 and later.looks == 4
    assert later.delta[0].mean == pytest.approx(direct.delta[0].mean)
    assert later.delta[0].variance == pytest.approx(direct.delta[0].variance, abs=1e-9)
    results = stream_results(ev, SequentialSettings(), min_trajectories=200)
    assert [r.sequential["stream_start_trajectory"] for r in results] == [0, 250, 500, 1000, 2000]
    assert sum(r.sequential["alpha"] for r in results) < 0.05
    verdicts = [PromotionPolicy(PolicySettings()).decide(r).verdict for r in results]
    assert verdicts[0] != "promote" and verdicts[3] == "promote"
    assert "after the first 1000 trajectories" in results[3].sequential["covers"]
    restored = ProgressiveEvidence.from_state(json.loads(json.dumps(ev.to_state())))
    assert [s.to_state() for s in restored.streams()] == [s.to_state() for s in ev.streams()]


def test_the_streams_do_not_depend_on_how_often_the_daemon_looks() -> None:
    """The same trajectories looked at every 250 and every 1,000: the same streams, the same evidence."""
    rng = np.random.default_rng(4)
    often, rarely = ProgressiveEvidence(), ProgressiveEvidence()
    for i in range(5000):
        y = float(rng.random() < 0.5)
        for ev in (often, rarely):
            ev.add((y + 0.1, 0.0, 400.0), (y, 0.0, 500.0), weight=2.0, unsupported=False, at=str(i))
        if i % 250 == 249:
            often.mark_look()
        if i % 1000 == 999:
            rarely.mark_look()

    def evidence(ev: ProgressiveEvidence) -> list[tuple[int, int, float, float]]:
        return [(s.start_n, s.n, s.delta[0].mean, s.delta[2].variance) for s in ev.streams()]

    assert evidence(often) == evidence(rarely)
    assert [s.start_n for s in often.streams()] == [0, 250, 500, 1000, 2000, 4000]


def test_point_mode_judges_the_holdout_window_as_the_seed_did() -> None:
    """Progressive evidence is how statistical mode judges; point mode keeps the seed's hold-out point
    estimates (so evidence gathered against an earlier baseline cannot leave it with nothing to compare)."""
    cfg = load_config(None)
    learner = RouterLearner.new("default", cfg)
    learner.set_baseline(None)
    for t in _trajectories(1500, seed=4):
        learner.observe(t)
    other = learner.challenger.clone()
    other.version_id = "default-v2"  # a baseline the evidence was not gathered against
    ev = evaluate(learner.snapshot(), other, PolicySettings(mode="point", min_reward_delta=-1.0,
                                                            max_error_rate_increase=1.0,
                                                            max_latency_increase_ms=1e6, required_task_count=0))
    assert ev.result.method == "holdout" and ev.result.task_count > 0
    assert ev.decision.verdict == "promote"


@pytest.mark.parametrize("applied_at", [1000, 1300, 1900])
def test_a_replay_after_a_promotion_gathers_the_same_evidence(applied_at: int) -> None:
    """kill -9 between a promotion and the next checkpoint: the replay learns of the promoted version at
    restore, before it reaches the look again; the uninterrupted run learned of it whenever the evaluation
    finished. Both gather the same evidence against it, starting right after the look."""
    from memabrad.learning.frozen import FrozenScorer
    from memabrad.learning.router import Router

    cfg = load_config(None)
    ts = _trajectories(2600, seed=21)
    run = RouterLearner.new("default", cfg)
    run.set_baseline(None)
    for t in ts[:1000]:
        run.observe(t)
    look = run.snapshot()
    promoted = Router.from_bytes(look.challenger.to_bytes(), version_id="default-v1")  # as the store returns it
    for t in ts[1000:applied_at]:
        run.observe(t)  # the verdict is pending: scored against the look's challenger too
    run.set_baseline(promoted, FrozenScorer(promoted), from_look=look.sequence)
    for t in ts[applied_at:]:
        run.observe(t)
    assert run.progressive.baseline_version_id == "default-v1" and run.progressive.n == 1600

    replay = RouterLearner.new("default", cfg)
    replay.set_baseline(None)
    for t in ts[:700]:
        replay.observe(t)
    replay = RouterLearner.from_state(json.loads(json.dumps(replay.to_state())), cfg)  # the last checkpoint
    replay.set_baseline(promoted, FrozenScorer(promoted), from_look=1)  # restore: the store has it active
    for t in ts[700:1000]:
        replay.observe(t)
    replay.snapshot()
    for t in ts[1000:]:
        replay.observe(t)
    assert replay.progressive.to_state() == run.progressive.to_state()


def test_a_look_not_promoted_stops_the_shadow() -> None:
    cfg = load_config(None)
    learner = RouterLearner.new("default", cfg)
    for t in _trajectories(400):
        learner.observe(t)
    snap = learner.snapshot()
    assert learner.comparison.shadow is not None and learner.comparison.shadow.look == snap.sequence
    learner.drop_shadow(snap.sequence)
    assert learner.comparison.shadow is None
