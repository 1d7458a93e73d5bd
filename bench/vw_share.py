"""Vowpal Wabbit on all of a log and on the share of it memabrad trains on.

The learning issue compares memabrad's challenger with VW ``cb_adf`` trained on the same log. The
daemon trains on the trajectories outside its hold-out (``evaluation.holdout_fraction``, 20 % by
default, chosen by a stable hash of the trajectory id) and keeps the rest for the hold-out window the
promotion veto reads; VW in ``bench/quality.py`` learns from every trajectory. This benchmark trains a
second VW on exactly the trajectories memabrad trains on (the same ``is_holdout`` test), so what the
hold-out costs and what the learner costs can be told apart. The workloads, streams, VW arguments and
truth are ``bench/quality.py``'s.

    .venv/bin/python bench/vw_share.py                       # the numeric workloads, seeds 1-3, 20k (~2 min)
    .venv/bin/python bench/vw_share.py --workloads digits --seeds 1,2,3,4,5
    .venv/bin/python bench/vw_share.py --workloads tools --out bench/vw-share-tools.json   # the tool desk

Since held-out trajectories are learned once they leave the window (``evaluation.learn_held_out``),
memabrad trains on more than this share: all but the window's most recent ``window_size`` held-out
trajectories. This benchmark still measures what VW does on the share held out for good before.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quality as q  # noqa: E402

from memabrad.config import Config  # noqa: E402
from memabrad.learning.window import is_holdout  # noqa: E402


def workload(name: str, seed: int) -> q.Workload:
    if name in q.CLASS_DATASETS:
        return q.classes_workload(name, seed)
    if name == "embed":
        return q.embed_workload(seed, 5000)
    if name == "tools":
        return q.tools_workload(seed, 5000)
    raise SystemExit(f"unknown workload {name!r} (choose from {', '.join([*q.CLASS_DATASETS, 'embed', 'tools'])})")


def run(name: str, seed: int, n: int, share: float) -> dict[str, Any]:
    """True values of VW trained on every trajectory and on those outside the hold-out."""
    w = workload(name, seed)
    every, trained = q.VW(), q.VW()
    kept = 0
    for row in w.stream(n):
        every.learn(row)
        if not is_holdout(row["trajectory_id"], share):
            trained.learn(row)
            kept += 1
    out = {"workload": name, "seed": seed, "n": n, "trained": kept,
           "vw_all": round(w.value(every.policy).value, 6), "vw_trained_share": round(w.value(trained.policy).value, 6)}
    every.finish()
    trained.finish()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="digits,embed,cancer,wine")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--out", default="bench/vw-share-results.json")
    args = ap.parse_args()
    share = Config().evaluation.holdout_fraction
    rows = [run(name, int(s), args.n, share) for name in args.workloads.split(",") for s in args.seeds.split(",")]
    print(f"| workload | seed | VW on all {args.n:,} | VW on the {1 - share:.0%} memabrad trains on |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['seed']} | {r['vw_all']:.3f} | {r['vw_trained_share']:.3f} ({r['trained']:,}) |")
    meta = {"benchmark": "vw_share", "holdout_fraction": share, "vw_args": "--cb_adf -q UA",
            "command": " ".join(sys.argv)}
    Path(args.out).write_text(json.dumps({**meta, "results": rows}, indent=1) + "\n")
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()
