"""The real learner, judged both ways, on the project simulator: when is it promoted, and is it truly better?

``bench/power.py`` measures the statistics with fixed challengers of known value. Here the
challenger is memabrad's own learner (``RouterLearner``, the daemon's record step) fed the
simulator's logged stream; at every look (``--look`` trajectories) the same frozen snapshot
is judged by both methods through the product's evaluation path (``promotion.evaluation``):

- ``holdout``: the hold-out window, fixed-n normal intervals at every look (before);
- ``progressive``: every trajectory scored before it was learned, confidence sequences, and
  the hold-out veto (now).

For each method: trajectories to the first promotion and the *true* reward, error-rate and
latency deltas of the model it would promote, against the logging agent, computed exactly
by the simulator (``memabrad.sim.true_value``) on contexts the learner never saw.

    .venv/bin/python bench/power_learned.py --seeds 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memabrad.config import load_config  # noqa: E402
from memabrad.learning.learner import RouterLearner  # noqa: E402
from memabrad.promotion.evaluation import evaluate  # noqa: E402
from memabrad.promotion.policy import PolicySettings  # noqa: E402
from memabrad.promotion.portfolio import selector  # noqa: E402
from memabrad.sim import Simulator, true_value, true_value_of_logging  # noqa: E402
from memabrad.wire.parse import parse_trajectory  # noqa: E402

TRUTH_SEED = 4242
TRUTH_CONTEXTS = 3000


def run_seed(seed: int, horizon: int, look: int, config: str | None = None) -> dict[str, Any]:
    cfg = load_config(config, {})
    settings = PolicySettings.from_config(cfg.promotion, cfg.evaluation)
    select = selector(settings, cfg.evaluation.confidence)
    sim = Simulator(seed=seed)
    learner = RouterLearner.new("default", cfg)
    learner.set_baseline(None)
    logging = true_value_of_logging(Simulator(seed=TRUTH_SEED), n_contexts=TRUTH_CONTEXTS)
    out: dict[str, Any] = {}
    for end in range(look, horizon + 1, look):
        for row in sim.generate(look):
            learner.observe(parse_trajectory(json.dumps(row)))
        snap = learner.snapshot(select)  # with a portfolio: the member put forward
        for method in ("holdout", "progressive"):
            if method in out:
                continue
            ev = evaluate(snap, None, replace(settings, method=method))
            if ev.decision.verdict == "promote":
                router = snap.challenger
                router.case_index = learner.case_index
                v = true_value(lambda task, c, r=router: r.choose(task, c).route, n_contexts=TRUTH_CONTEXTS,
                               seed=TRUTH_SEED)
                out[method] = {"first_promotion": end, "member": snap.member,
                               "true_delta": {"reward": v.reward - logging.reward,
                                              "error_rate": v.error_rate - logging.error_rate,
                                              "latency_ms": v.latency_ms - logging.latency_ms},
                               "estimated_delta": {m: ev.result.deltas[m].value for m in ev.result.deltas}}
        if len(out) == 2:
            break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--horizon", type=int, default=20000)
    ap.add_argument("--look", type=int, default=500)
    ap.add_argument("--config", default=None, help="a config file (default: built-in defaults)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("power-learned-results.json")))
    args = ap.parse_args(argv)
    t0 = time.time()
    runs = []
    for seed in range(args.seeds):
        runs.append(run_seed(100 + seed, args.horizon, args.look, args.config))
        print(f"seed {seed}: " + "  ".join(
            f"{m} {r['first_promotion']} (true reward {r['true_delta']['reward']:+.3f}, "
            f"error {r['true_delta']['error_rate']:+.4f}, latency {r['true_delta']['latency_ms']:+.0f})"
            for m, r in runs[-1].items()) + f"  [{time.time() - t0:.0f} s]", flush=True)
    summary: dict[str, Any] = {"seeds": args.seeds, "look_every": args.look, "horizon": args.horizon,
                               "config": args.config or "built-in defaults"}
    print(f"\n{'method':12s} {'promoted':>8s} {'median':>7s} {'max':>7s} {'true reward':>12s} "
          f"{'true error':>11s} {'harmful':>8s}")
    for m in ("holdout", "progressive"):
        got = [r[m] for r in runs if m in r]
        firsts = [g["first_promotion"] for g in got]
        harmful = sum(1 for g in got if g["true_delta"]["reward"] < 0.01
                      or g["true_delta"]["error_rate"] > 0.02 or g["true_delta"]["latency_ms"] > 250)
        summary[m] = {
            "promoted": len(got),
            "median_first_promotion": statistics.median(firsts) if firsts else None,
            "max_first_promotion": max(firsts) if firsts else None,
            "mean_true_reward_delta": statistics.fmean(g["true_delta"]["reward"] for g in got) if got else None,
            "mean_true_error_delta": statistics.fmean(g["true_delta"]["error_rate"] for g in got) if got else None,
            "promoted_but_truly_outside_a_gate": harmful,
        }
        s = summary[m]
        print(f"{m:12s} {len(got):>8d} {s['median_first_promotion']!s:>7s} {s['max_first_promotion']!s:>7s} "
              f"{s['mean_true_reward_delta'] or 0:>+12.3f} {s['mean_true_error_delta'] or 0:>+11.4f} {harmful:>8d}")
    Path(args.out).write_text(json.dumps({"summary": summary, "runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
