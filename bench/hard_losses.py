"""Where the challenger loses on the hard workload: its choices and their cost by task family and level.

Trains the default challenger as the quality benchmark does (``RouterLearner`` on the seeded log,
parsed from bytes, with its case index), then routes held-out tasks with its greedy choice and
compares each with the exact best route of the task's (family, level): the share of tasks sent to
each route and the reward given away, per (family, level), as a share of all tasks.

    .venv/bin/python bench/hard_losses.py --seed 1            # 20,000 trajectories, ~40 s
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import memabrad_policy  # noqa: E402  (the challenger's choice as the quality benchmark makes it)

from memabrad.config import load_config  # noqa: E402
from memabrad.learning.learner import RouterLearner  # noqa: E402
from memabrad.sim import hard  # noqa: E402
from memabrad.wire.parse import parse_trajectory  # noqa: E402


def losses(seed: int, n: int, n_test: int) -> dict[str, object]:
    cfg = load_config(None, {k: v for k, v in os.environ.items() if k.startswith("MEMABRAD_")})
    learner = RouterLearner.new("hard", cfg)
    for row in hard.HardWorkload(seed=seed, router_id="hard").iter_generate(n):
        learner.observe(parse_trajectory(json.dumps(row).encode()))
    policy = memabrad_policy(learner)
    picks: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    total = 0.0
    test = hard.HardWorkload(seed=12345).generate(n_test)
    for row in test:
        t = row["task"]
        ctx = hard.context_of_task(t)
        route = policy({"input": t["input"], "task_type": t["task_type"]}, list(hard.ROUTES))
        picks[(ctx.family, ctx.level)][route] += 1
        total += hard.expected_reward(ctx.family, ctx.level, route)
    rows = {}
    for (fam, level), c in sorted(picks.items()):
        best = max(hard.ROUTES, key=lambda q, f=fam, lv=level: hard.expected_reward(f, lv, q))
        top = hard.expected_reward(fam, level, best)
        lost = sum(m * (top - hard.expected_reward(fam, level, q)) for q, m in c.items()) / len(test)
        k = sum(c.values())
        rows[f"{fam}/{level}"] = {"best": best, "lost": round(lost, 4),
                                  "choices": {q: round(m / k, 3) for q, m in c.most_common(4)}}
    return {"seed": seed, "n": n, "value": round(total / len(test), 4), "by_context": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--test", type=int, default=3000, help="held-out tasks")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    res = losses(args.seed, args.n, args.test)
    print(f"hard, seed {args.seed}, {args.n:,} trajectories: value {res['value']:.4f} on {args.test:,} held-out tasks")
    for key, v in sorted(res["by_context"].items(), key=lambda kv: -kv[1]["lost"]):
        print(f"  {key:14s} best {v['best']:13s} lost {v['lost']:.4f}  {v['choices']}")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
