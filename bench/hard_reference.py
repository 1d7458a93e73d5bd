"""What an ideal learner could reach on the hard workload at a given log size.

The learning issue asks the challenger to come within 0.02 of the best route per task family
on the hard LLM-routing workload (``memabrad/sim/hard.py``) at 20,000 logged trajectories.
How far that is within reach of *any* learner depends on how noisy 20,000 such trajectories
are: each of the eleven explored routes gets 2.5% of the traffic. This benchmark gives the
learner what memabrad has to find out for itself — each task's family, or its family and
level, read from the simulator's truth — and lets it pick, per family (or per family and
level), the route with the highest mean logged reward (unbiased here: the logging policy does
not depend on the task). Its exact true value over seeded logs is the reference.

    .venv/bin/python bench/hard_reference.py                 # 20 seeds at 20,000; table + JSON
    .venv/bin/python bench/hard_reference.py --n 5000 --seeds 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memabrad.sim.hard import MIX, ROUTES, HardContext, HardWorkload, context_of_task  # noqa: E402


def greedy_values(seed: int, n: int) -> dict[str, float]:
    """True values of the per-family and per-(family, level) sample-mean greedy policies on one log."""
    w = HardWorkload(seed=seed)
    sums: dict[tuple[Any, ...], float] = defaultdict(float)
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    for row in w.iter_generate(n):
        ctx = context_of_task(row["task"])
        route, reward = row["decision"]["route"], row["outcome"]["reward"]
        for key in (("family", ctx.family), ("family_level", ctx.family, ctx.level)):
            sums[key + (route,)] += reward
            counts[key + (route,)] += 1
    out = {}
    for kind in ("family", "family_level"):
        choice = {}
        for fam, level in MIX:
            key = (kind, fam) if kind == "family" else (kind, fam, level)
            choice[(fam, level)] = max(ROUTES, key=lambda r, key=key: sums[key + (r,)] / max(1, counts[key + (r,)]))
        out[kind] = w.population_value(choice)
    return out


def best_per_family() -> float:
    w = HardWorkload(seed=0)
    choice = {}
    for fam in {f for f, _ in MIX}:
        keys = [k for k in MIX if k[0] == fam]
        best = max(ROUTES, key=lambda r, keys=keys: sum(MIX[k] * w.expected_reward(HardContext(*k), r) for k in keys))
        choice.update(dict.fromkeys(keys, best))
    return w.population_value(choice)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="logged trajectories per seed")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "hard-reference-results.json"))
    args = ap.parse_args(argv)
    runs = [greedy_values(seed, args.n) for seed in range(1, args.seeds + 1)]
    w = HardWorkload(seed=0)
    result: dict[str, Any] = {
        "n": args.n, "seeds": args.seeds,
        "best_per_family": round(best_per_family(), 4),
        "oracle_per_family_and_level": round(w.population_value(w.oracle_choice()), 4),
    }
    print(f"hard workload, {args.n:,} trajectories, {args.seeds} seeds: exact true values")
    print(f"{'policy':58s} {'mean':>7s} {'median':>7s} {'min':>7s} {'max':>7s}")
    for kind, label in (("family", "greedy on per-family means (family given)"),
                        ("family_level", "greedy on per-(family, level) means (both given)")):
        v = [r[kind] for r in runs]
        result[kind] = {"mean": round(statistics.mean(v), 4), "median": round(statistics.median(v), 4),
                        "min": round(min(v), 4), "max": round(max(v), 4)}
        s = result[kind]
        print(f"{label:58s} {s['mean']:7.4f} {s['median']:7.4f} {s['min']:7.4f} {s['max']:7.4f}")
    print(f"{'best route per family (the target is this - 0.02)':58s} {result['best_per_family']:7.4f}")
    print(f"{'oracle per (family, level)':58s} {result['oracle_per_family_and_level']:7.4f}")
    result["per_seed"] = {str(seed): {k: round(v, 4) for k, v in r.items()} for seed, r in enumerate(runs, 1)}
    print("per seed (family / family and level): " + ", ".join(
        f"{seed} {r['family']:.3f} / {r['family_level']:.3f}" for seed, r in enumerate(runs[:3], 1)) + ", ...")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
