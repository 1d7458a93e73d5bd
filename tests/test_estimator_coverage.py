"""Calibration of IPS, SNIPS and DR intervals on simulated logs whose true policy value is known.

Setup. Each repetition logs ``N`` tasks with the simulator's epsilon-greedy logging policy
(epsilon 0.3 over ``fixed_policy``, exact propensities) from its own seed. Two FIXED target
policies are evaluated off-policy: the simulator's oracle (which often disagrees with the logger,
so importance weights reach 1 / (0.3 / 6) = 20) and ``fixed_policy`` itself (mostly agrees).

Truth. An interval from i.i.d. (context, action, outcome) samples targets the policy's value over
the context distribution, so the truth is ``true_value(policy, n_contexts=50000)``: the exact
expected reward (the world's analytic ``expected_outcome``, no outcome sampling) averaged over
50,000 contexts from the same context distribution the logs are drawn from (its own error, about
0.001, is negligible beside interval half-widths of 0.03-0.2). ``true_value_on(policy, rows)``, the
value on the very contexts logged, is also checked: intervals must cover it at least as often
(they are conservative for it, since they also carry the context-to-context variance).

DR's outcome model is a ``Router`` trained once on separate, uniformly logged data (another seed),
so it is fixed and independent of the evaluation logs, as DR's unbiasedness requires.
"""

from __future__ import annotations

import numpy as np
import pytest

from memabrad.evaluation.estimators import influence, mean_interval
from memabrad.learning.router import Router
from memabrad.sim import Simulator, fixed_policy, oracle_policy, true_value, true_value_on

REPETITIONS = 200
N = 500
ESTIMATORS = ("ips", "snips", "dr")


def _outcome_model() -> Router:
    model = Router()
    for t in Simulator(seed=999, epsilon=1.0).generate(6000):
        d, o = t["decision"], t["outcome"]
        model.learn(model.featurizer.featurize(t["task"]), d["route"], propensity=d["propensity"],
                    reward=o["reward"], error=o["error"], latency_ms=o["latency_ms"])
    return model


@pytest.mark.slow
def test_intervals_cover_the_true_value_about_95_percent_of_the_time() -> None:
    model = _outcome_model()
    targets = {"oracle": oracle_policy(), "fixed": fixed_policy}
    truth = {name: true_value(policy, n_contexts=50_000, seed=4242).reward for name, policy in targets.items()}
    keys = [(t, e) for t in targets for e in ESTIMATORS]
    covered = dict.fromkeys(keys, 0)
    covered_on_contexts = dict.fromkeys(keys, 0)
    widths: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
    for rep in range(REPETITIONS):
        rows = Simulator(seed=1000 + rep, epsilon=0.3).generate(N)
        y = np.array([r["outcome"]["reward"] for r in rows])
        p = np.array([r["decision"]["propensity"] for r in rows])
        logged = [r["decision"]["route"] for r in rows]
        xs = [model.featurizer.featurize(r["task"]) for r in rows]
        q_log = np.array([model.predict_outcome(x, a).reward for x, a in zip(xs, logged, strict=True)])
        for name, policy in targets.items():
            on_contexts = true_value_on(policy, rows).reward
            chosen = [policy(r["task"], r["candidates"]) for r in rows]
            match = np.array([c == a for c, a in zip(chosen, logged, strict=True)])
            q_pi = np.array([model.predict_outcome(x, c).reward for x, c in zip(xs, chosen, strict=True)])
            for est in ESTIMATORS:
                iv = mean_interval(influence(est, y, p, match, q_pi, q_log), 0.95)
                covered[name, est] += iv.ci_low <= truth[name] <= iv.ci_high
                covered_on_contexts[name, est] += iv.ci_low <= on_contexts <= iv.ci_high
                widths[name, est].append(iv.ci_high - iv.ci_low)

    rates = {k: v / REPETITIONS for k, v in covered.items()}
    for key, rate in rates.items():
        assert 0.88 <= rate <= 0.99, f"{key} covered the truth in {rate:.1%} of {REPETITIONS} repetitions: {rates}"
        assert covered_on_contexts[key] / REPETITIONS >= 0.88, (key, covered_on_contexts)
    for name in targets:
        dr, ips = float(np.mean(widths[name, "dr"])), float(np.mean(widths[name, "ips"]))
        assert dr <= ips, f"{name}: mean DR width {dr:.4f} > mean IPS width {ips:.4f}"
