"""Exact per-route ridge fits on the router's own features, beside the online router and VW, on one log.

A diagnosis, not the product. After the default router has learned a workload's log of ``n``
trajectories (``bench/quality.py``'s workloads and streams), each route's reward is fitted offline
and exactly by ridge least squares (with an unpenalised intercept) on the trajectories that took it,
over the feature vectors the router itself computes for those tasks (words, text structure, task type,
numbers; unit norm). Routing by the fits is then judged on the workload's exact truth beside the
online router (the main challenger, as ``bench/quality.py`` serves it) and Vowpal Wabbit ``cb_adf``
trained on the same log:

- ``ridge_0.1``, ``ridge_1``, ``ridge_10``: one penalty for every route;
- ``ridge_loo``: each route's penalty chosen by its exact leave-one-out error (``RidgeCV``, a grid of
  0.03 to 30) where it took at most 3,000 trajectories, 1 where it took more (a route with that much
  evidence hardly depends on it, and its leave-one-out needs an n-by-n matrix);
- ``ridge_pooled``: one penalty for every route, the one of 0.1, 1, 10 whose leave-one-out squared error,
  each route's divided by its rewards' variance, is lowest on average over the routes with at most 3,000
  trajectories (``pooled_penalty``): a choice the log alone can make, where the three columns before it
  are each one fixed setting.

If a fit on the router's features routes better than the router, the features hold what the online
fit has not learned: the step and the shrinkage, not the representation, are what limit it there.
The fits see no case-index hint, no group means and no shared part.

    .venv/bin/python bench/ridge_probe.py                                  # sources, tools, hard, digits (~4 min)
    .venv/bin/python bench/ridge_probe.py --workloads pareto,sea --seeds 1-3 --out /tmp/ridge.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import quality as q  # noqa: E402
from seeds import parse_seeds  # noqa: E402

from memabrad.config import load_config  # noqa: E402
from memabrad.learning.learner import RouterLearner  # noqa: E402
from memabrad.learning.router import Router  # noqa: E402
from memabrad.wire.parse import parse_trajectory  # noqa: E402

PENALTIES = (0.1, 1.0, 10.0)
LOO_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
LOO_MAX_N = 3000
_COLUMNS = 1 << 20  # hashed feature ids folded into this many sparse columns (ids are below 2^hash_bits)


def _matrix(xs: Sequence[dict[int, float]]) -> sp.csr_matrix:
    ind: list[int] = []
    val: list[float] = []
    ptr = [0]
    for x in xs:
        ind.extend(k % _COLUMNS for k in x)
        val.extend(x.values())
        ptr.append(len(ind))
    return sp.csr_matrix((val, ind, ptr), shape=(len(xs), _COLUMNS))


Routes = dict[str, tuple[sp.csr_matrix, np.ndarray]]
"""Per route, the feature matrix of the tasks that took it and their rewards (``route_data``)."""


def route_data(logged: dict[str, tuple[list[dict[int, float]], list[float]]]) -> Routes:
    """Each route's features and rewards as one sparse matrix and one array, built once for every fit."""
    return {route: (_matrix(xs), np.asarray(ys, dtype=float)) for route, (xs, ys) in sorted(logged.items())}


def _leave_one_out(by_route: Routes) -> dict[str, Any]:
    """Per route with at most ``LOO_MAX_N`` trajectories, its ridge fit over ``LOO_GRID`` with every penalty's
    leave-one-out errors kept: one fit serves both the per-route choice and the pooled one."""
    from sklearn.linear_model import RidgeCV

    return {route: RidgeCV(alphas=LOO_GRID, store_cv_results=True).fit(x, y)
            for route, (x, y) in by_route.items() if x.shape[0] <= LOO_MAX_N}


def _fits(by_route: Routes, penalty: float | str, loo: dict[str, Any] | None = None
          ) -> tuple[dict[str, Any], dict[str, float]]:
    """Per route, a fitted ridge model; and, for ``penalty == "loo"``, the penalty each route's leave-one-out chose
    (``loo``: ``_leave_one_out``'s fits, when made already)."""
    from sklearn.linear_model import Ridge

    if penalty == "loo" and loo is None:
        loo = _leave_one_out(by_route)
    models: dict[str, Any] = {}
    chosen: dict[str, float] = {}
    for route, (x, y) in by_route.items():
        if penalty == "loo" and loo is not None and route in loo:
            m = loo[route]
            chosen[route] = float(m.alpha_)
        else:
            m = Ridge(alpha=1.0 if penalty == "loo" else float(penalty), solver="sparse_cg").fit(x, y)
        models[route] = m
    return models, chosen


def pooled_penalty(by_route: Routes, loo: dict[str, Any] | None = None) -> tuple[float, dict[str, float]]:
    """The penalty of ``PENALTIES`` with the lowest mean leave-one-out error over the routes with at most
    ``LOO_MAX_N`` trajectories (each route's squared errors over its rewards' variance; a route whose rewards
    never vary is left out), and each penalty's mean (``loo``: ``_leave_one_out``'s fits, when made already)."""
    if loo is None:
        loo = _leave_one_out(by_route)
    errs: dict[float, list[float]] = {a: [] for a in PENALTIES}
    for route, m in loo.items():
        y = by_route[route][1]
        if len(y) < 3 or not y.var() > 0.0:
            continue
        for a in PENALTIES:
            errs[a].append(float(m.cv_results_[:, LOO_GRID.index(a)].mean() / y.var()))
    means = {a: float(np.mean(v)) if v else float("inf") for a, v in errs.items()}
    return min(PENALTIES, key=lambda a: (means[a], a)), means


class TaskFeatures:
    """The router's features of each task a policy is asked about, computed once for all the policies judged."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._by_task: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, task: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(column ids, values) of ``task``'s features."""
        key = json.dumps(task, sort_keys=True, default=str)
        found = self._by_task.get(key)
        if found is None:
            x = self.router.task_features(task, None)[0]
            found = self._by_task[key] = (np.fromiter((k % _COLUMNS for k in x), dtype=np.int64, count=len(x)),
                                          np.fromiter(x.values(), dtype=float, count=len(x)))
        return found


def _ridge_policy(router: Router, models: dict[str, Any], features: TaskFeatures | None = None) -> q.Policy:
    features = TaskFeatures(router) if features is None else features
    weights = {r: (np.ravel(m.coef_), float(np.ravel(m.intercept_)[0])) for r, m in models.items()}

    def policy(task: dict[str, Any], candidates: Sequence[str]) -> str:
        cols, vals = features(task)
        scores = {c: float(vals @ weights[c][0][cols]) + weights[c][1] for c in candidates if c in weights}
        return max(candidates, key=lambda c: (scores.get(c, -np.inf), -candidates.index(c)))
    return policy


def run(w: q.Workload, n: int, with_vw: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    learner = RouterLearner.new(w.router_id, load_config(None, {}))
    vw = q.VW() if with_vw else None
    rows = list(w.stream(n))
    for row in rows:
        learner.observe(parse_trajectory(json.dumps(row).encode()))
        if vw is not None:
            vw.learn(row)
    router = learner.challenger
    logged: dict[str, tuple[list[dict[int, float]], list[float]]] = defaultdict(lambda: ([], []))
    for row in rows:
        xs, ys = logged[row["decision"]["route"]]
        xs.append(router.task_features(row["task"], None)[0])
        ys.append(float(row["outcome"]["reward"]))
    by_route = route_data(logged)
    features = TaskFeatures(router)
    out: dict[str, Any] = {
        "workload": w.name, "n": n, "logging": round(w.logging.value, 4),
        "best_single": round(w.best_single[1].value, 4),
        "online": round(w.value(q.memabrad_policy(learner)).value, 4),
        "vw": round(w.value(vw.policy).value, 4) if vw is not None else None,
    }
    if vw is not None:
        vw.finish()
    loo = _leave_one_out(by_route)
    for penalty in (*PENALTIES, "loo"):
        models, chosen = _fits(by_route, penalty, loo)
        out[f"ridge_{penalty:g}" if penalty != "loo" else "ridge_loo"] = round(
            w.value(_ridge_policy(router, models, features)).value, 4)
        if chosen:
            out["loo_penalties"] = {f"{a:g}": k for a, k in sorted(Counter(chosen.values()).items())}
    chosen_penalty, means = pooled_penalty(by_route, loo)
    out["pooled_penalty"] = chosen_penalty
    out["pooled_loo_error"] = {f"{a:g}": round(v, 4) for a, v in means.items()}
    out["ridge_pooled"] = out[f"ridge_{chosen_penalty:g}"]
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


KINDS = ("logging", "best_single", "vw", "online", "ridge_0.1", "ridge_1", "ridge_10", "ridge_loo", "ridge_pooled")


def table(results: Sequence[dict[str, Any]]) -> str:
    lines = [f"{'workload':10s} {'seed':>4s} " + " ".join(f"{k:>11s}" for k in KINDS)]
    for r in results:
        cells = " ".join(f"{r[k]:11.4f}" if r.get(k) is not None else f"{'-':>11s}" for k in KINDS)
        lines.append(f"{r['workload']:10s} {r['seed']:4d} {cells}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="sources,tools,hard,digits")
    ap.add_argument("--seeds", default="1", help="seeds and ranges: 1-3 or 1,4-6")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--no-vw", action="store_true", help="skip Vowpal Wabbit")
    ap.add_argument("--cache-dir", type=Path, default=q.default_cache_dir())
    ap.add_argument("--out", default=str(ROOT / "bench" / "ridge-probe.json"))
    args = ap.parse_args(argv)
    results = []
    for seed in parse_seeds(args.seeds):
        builders = q.workload_builders(seed, args.cache_dir)
        for name in [s.strip() for s in args.workloads.split(",") if s.strip()]:
            if name not in builders:
                ap.error(f"unknown workload {name!r} (choose from {', '.join(builders)})")
            r = {"seed": seed, **run(builders[name](), args.n, not args.no_vw)}
            print(f"  {name} seed {seed}: online {r['online']:.4f}, ridge_loo {r['ridge_loo']:.4f} "
                  f"({r['seconds']:.0f} s)", file=sys.stderr, flush=True)
            results.append(r)
    command = " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])
    Path(args.out).write_text(json.dumps({"benchmark": "ridge_probe", "command": command, "results": results},
                                         indent=2) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
