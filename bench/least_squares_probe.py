"""Per-route least squares on a log, offline: which features can route a numbers-only workload.

A diagnosis, not the product. For a classification dataset of ``bench/quality.py`` (one route per
class, the task one fixed text and a row of numbers), each route's reward is fitted by ridge least
squares (one pseudo-observation per weight) on the trajectories that took it, exactly and offline,
on four feature sets; the true value of routing by those fits is measured on the held-out examples:

- ``raw``: the numbers as logged, and an intercept (what VW ``cb_adf -q UA`` fits);
- ``z``: the router's standardised numbers (``z:`` terms, scales from the log's first values) and an
  intercept;
- ``router``: the router's whole feature vector (words, knots of each number's logarithm, the
  standardised terms, length; unit norm), and an intercept;
- ``router_z``: only the standardised terms of that vector, as they are in it (scaled by its norm).

If ``z`` routes as well as ``raw`` while the online router stays under it, the step, not the
features, is what limits the router there.

    .venv/bin/python bench/least_squares_probe.py                 # digits, led, waveform, sea, wine (~40 s)
    .venv/bin/python bench/least_squares_probe.py --workloads digits --n 5000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quality as q  # noqa: E402

from memabrad.learning.router import Router  # noqa: E402

KINDS = ("raw", "z", "router", "router_z")


def _vectors(router: Router, tasks: list[dict[str, Any]], kind: str, cols: dict[int, int]) -> np.ndarray:
    """One row per task: the chosen feature set and an intercept (column 0); ``cols`` numbers the
    hashed features (new ones added)."""
    if kind == "raw":
        names = list(tasks[0]["features"])
        return np.array([[1.0, *(float(t["features"][n]) for n in names)] for t in tasks])
    if kind == "z":
        rows = []
        for t in tasks:
            zs = [router.numbers.z(n, float(v)) for n, v in t["features"].items()]
            rows.append([1.0, *(z or 0.0 for z in zs)])
        return np.array(rows)
    keep = router.featurizer.number_keys() if kind == "router_z" else None
    xs = [router.featurizer.featurize(t) for t in tasks]
    for x in xs:
        for k in x:
            if keep is None or k in keep:
                cols.setdefault(k, len(cols) + 1)
    out = np.zeros((len(xs), len(cols) + 1))
    out[:, 0] = 1.0
    for i, x in enumerate(xs):
        for k, v in x.items():
            j = cols.get(k)
            if j is not None:
                out[i, j] = v
    return out


def run(name: str, seed: int, n: int) -> dict[str, Any]:
    w = q.classes_workload(name, seed)
    rows = list(w.stream(n))
    router = Router()
    for row in rows[:64]:  # the scales: fixed from the first 64 values, as the learner fixes them
        router.numbers.observe(row["task"]["features"])
    routes = list(rows[0]["candidates"])
    out: dict[str, Any] = {"workload": name, "seed": seed, "n": n}
    for kind in KINDS:
        cols: dict[int, int] = {}
        X = _vectors(router, [r["task"] for r in rows], kind, cols)
        fits = {}
        for route in routes:
            took = np.array([r["decision"]["route"] == route for r in rows])
            y = np.array([r["outcome"]["reward"] for r in rows])[took]
            A = X[took]
            fits[route] = np.linalg.solve(A.T @ A + np.eye(A.shape[1]), A.T @ y)

        def policy(task: dict[str, Any], candidates: list[str], kind: str = kind, cols: dict = cols,
                   fits: dict = fits) -> str:
            x = _vectors(router, [task], kind, dict(cols))[0, : len(fits[routes[0]])]  # unseen features: none
            return max(candidates, key=lambda c: float(x @ fits[c]))

        out[kind] = round(w.value(policy).value, 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="digits,led,waveform,sea,wine")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--out", default="bench/least-squares-probe.json")
    args = ap.parse_args()
    results = [run(name, args.seed, args.n) for name in args.workloads.split(",")]
    print(f"{'workload':10s} " + " ".join(f"{k:>9s}" for k in KINDS))
    for r in results:
        print(f"{r['workload']:10s} " + " ".join(f"{r[k]:9.4f}" for k in KINDS))
    Path(args.out).write_text(json.dumps({"benchmark": "least_squares_probe", "command": " ".join(sys.argv),
                                          "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
