"""``memabrad simulate``: simulated trajectories (or a static benchmark suite) as JSONL."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from memabrad.cli.common import add_common_options
from memabrad.cli.errors import UsageError

__all__ = ["cmd_simulate", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", help="write simulated trajectories as JSONL")
    add_common_options(p)
    p.add_argument("--n", type=int, default=5000, help="number of trajectories (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--epsilon", type=float, default=0.3, help="logging policy exploration (default 0.3)")
    p.add_argument("--out", required=True, help="output JSONL file ('-' for stdout)")
    p.add_argument("--suite", action="store_true", help="write a static benchmark suite instead")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from memabrad.sim import Simulator, write_jsonl

    if args.n <= 0:
        raise UsageError("--n must be > 0")
    if not 0.0 <= args.epsilon <= 1.0:
        raise UsageError("--epsilon must be within [0, 1]")
    sim = Simulator(seed=args.seed, router_id=args.router, epsilon=args.epsilon)
    rows = sim.generate_suite(args.n) if args.suite else sim.generate(args.n)
    if args.out == "-":
        for row in rows:
            sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(out, rows)
        print(f"wrote {len(rows)} {'suite tasks' if args.suite else 'trajectories'} to {out}", file=sys.stderr)
    return 0
