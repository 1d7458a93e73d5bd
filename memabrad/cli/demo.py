"""``memabrad demo``: embedded broker + simulated traffic + the daemon, until the first promotion."""

from __future__ import annotations

import argparse

__all__ = ["cmd_demo", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="embedded broker + simulated traffic + the daemon, until the first promotion")
    p.add_argument("--rate", type=int, default=4000, help="trajectories per second offered (default 4000)")
    p.add_argument("--max-trajectories", type=int, default=200_000, help="give up after this many (default 200000)")
    p.add_argument("--timeout", type=float, default=110.0, help="give up after this many seconds (default 110)")
    p.add_argument("--keep", action="store_true", help="keep the temporary base directory")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.set_defaults(func=cmd_demo, config=None, base_dir=None, router="default", json=False)


def cmd_demo(args: argparse.Namespace) -> int:
    from memabrad.demo import run_demo

    return run_demo(args)
