"""Where the router loses on short texts without task types: its stacking weights, measured against the truth.

A route predicts ``mean + lambda_g * d_g + lambda_f * d_f`` and the router ranks routes by it
(``learning/route_model.py``). This probe trains the product's ``Router`` on the help-desk log (task
types removed by default) and, at each size, ranks held-out tasks with the *same* trained parts and
different reward-head weights, scoring each ranking by the workload's exact expected rewards:

- ``product``: the router's own weights (``RouteModel.lambdas``: each route's prequential least
  squares, a lone contextual part's at its error today, ``route_parts.stack_now``);
- ``per-route``: each route's plain prequential least squares (``route_parts.stack``; the product
  before ``stack_now``);
- ``eb``: each route's contextual weight shrunk toward the routes' precision-weighted mean by the
  share of its distance from it that sampling noise explains (DerSimonian-Laird between-route
  variance; a weight's variance from its route's prequential residual spread over its ``f*f`` sum);
- ``pooled``: one pair for the router, from all routes' sums added up;
- ``hier-K``: each route's sums plus K pseudo-events at the router's average;
- ``common-1``: the contextual part at full weight for every route;
- ``truth-fit``: per route, the intercept and the weights of its group and contextual parts that best
  fit the exact truth on the held-out tasks (least squares, which no learner has: what perfectly
  estimated MSE-optimal weights would rank like; not a ceiling, ranking is not least squares);
- ``split-route``, ``split-type``: the contextual part's two halves, the route's own part and the
  router's shared part, weighed apart — per route, or per route and task group — by least squares on
  sums the probe gathers prequentially while the router learns (each novel event scored before it
  is learned), ridge-shrunk by ``SPLIT_PRIOR`` pseudo-events: a route's pair toward the product's weight,
  a (route, type) pair toward the mean of its route's pair. A route
  whose reward moves with the shared part less than the logging route's does (a large model on a
  hard task of a family) could then follow it less: an item-response reading of the shared part
  as task difficulty and of the weight as the route's sensitivity to it.

Per route it also prints the weight the product uses (and the plain one), the weight that fits the
truth now (``lambda_now``) and their correlation, which is what the benchmarks doc reads. Ranking uses the
router's pessimism (``--pessimism``, default the product's 1.0) with its own standard errors.

    .venv/bin/python bench/stacking_probe.py                       # untyped help desk, seeds 1-3
    .venv/bin/python bench/stacking_probe.py --typed --seeds 1
    .venv/bin/python bench/stacking_probe.py --workload sim --typed   # the project simulator (numbers, tags too)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memabrad.learning.batch import group_parts  # noqa: E402
from memabrad.learning.route_model import own_reward_part  # noqa: E402
from memabrad.learning.route_parts import group_reward_offset, stack  # noqa: E402
from memabrad.learning.router import Router  # noqa: E402
from memabrad.sim import Simulator, hard  # noqa: E402
from memabrad.sim.helpdesk import EXPECTED_REWARD, HelpdeskWorkload  # noqa: E402
from memabrad.sim.world import expected_outcome_for_task  # noqa: E402

VARIANTS = ("product", "per-route", "eb", "pooled", "hier-50", "hier-200", "hier-1000", "common-1", "truth-fit",
            "split-route", "split-type")
SPLIT_PRIOR = 20.0  # pseudo-events at the product's weight behind each split pair (fixed before measuring)


def _helpdesk_truth(task: dict[str, Any], route: str) -> float:
    return EXPECTED_REWARD[task["task_type"]][route]


def _hard_truth(task: dict[str, Any], route: str) -> float:
    ctx = hard.context_of_task(task)
    return hard.expected_reward(ctx.family, ctx.level, route)


def _sim_truth(task: dict[str, Any], route: str) -> float:
    return expected_outcome_for_task(task, route).reward


# name: (a seeded log, the exact expected reward of a route on a task)
WORKLOADS: dict[str, tuple[Callable[[int], Any], Callable[[dict[str, Any], str], float]]] = {
    "helpdesk": (HelpdeskWorkload, _helpdesk_truth),
    "hard": (hard.HardWorkload, _hard_truth),
    "sim": (Simulator, _sim_truth),
}


def _task(row: dict[str, Any], typed: bool) -> dict[str, Any]:
    """What the router sees of a logged task: its text, numbers and tags, and its type unless untyped."""
    t = row["task"]
    extra = {k: t[k] for k in ("features", "tags") if t.get(k)}
    return {"input": t["input"], **extra, **({"task_type": t["task_type"]} if typed else {})}


class SplitSums:
    """Prequential sums ``[o*o, o*s, s*s, o*t, s*t]`` of a route's own part ``o``, the shared part ``s`` and
    the target ``t`` (what the mean and the weighted group part leave), per route and per (route, group)."""

    def __init__(self) -> None:
        self.route: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(5))
        self.group: dict[tuple[str, str | None], np.ndarray] = defaultdict(lambda: np.zeros(5))
        self.events: dict[str, int] = defaultdict(int)

    def add(self, r: Router, x: Any, route: str, group: str | None, reward: float) -> None:
        m = r.routes.get(route)
        if m is None or not m.n or r.shared is None:
            return
        lam_g = m.lambdas()[0][0]
        t = reward - m.reward_mean - lam_g * group_reward_offset(m.groups.get(group or ""), m.reward_mean)
        o, s = own_reward_part(m, x), r.shared.part(x)[0]
        v = np.array([o * o, o * s, s * s, o * t, s * t])
        self.route[route] += v
        self.group[(route, group)] += v
        self.events[route] += 1

    def weights(self, route: str, group: str | None, prior: float, per_type: bool) -> tuple[float, float]:
        """(weight of the own part, weight of the shared part): the route's pair ridge-shrunk toward ``prior``
        (the product's weight); with ``per_type``, the (route, group) pair shrunk toward that pair's mean."""
        n = self.events.get(route, 0)
        if not n:
            return prior, prior
        tot = self.route[route]
        own = _ridge(tot, prior, tot[0] / n, tot[2] / n)
        if not per_type or (route, group) not in self.group:
            return own
        return _ridge(self.group[(route, group)], 0.5 * (own[0] + own[1]), tot[0] / n, tot[2] / n)


def _ridge(s: np.ndarray, prior: float, oo_mean: float, ss_mean: float) -> tuple[float, float]:
    """Least squares of the two weights from the sums ``s``, plus ``SPLIT_PRIOR`` pseudo-events at ``prior``;
    clipped to [0, 1.5]."""
    ko, ks = SPLIT_PRIOR * oo_mean, SPLIT_PRIOR * ss_mean
    a = np.array([[s[0] + ko, s[1]], [s[1], s[2] + ks]])
    b = np.array([s[3] + ko * prior, s[4] + ks * prior])
    try:
        w = np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return prior, prior
    return float(np.clip(w[0], 0.0, 1.5)), float(np.clip(w[1], 0.0, 1.5))


def _weights(r: Router, routes: list[str], variant: str) -> np.ndarray:
    """Per route, the reward head's (lambda_g, lambda_f) under ``variant``."""
    own = [r.routes[name].s_stack[0] for name in routes]
    if variant == "product":
        return np.array([r.routes[name].lambdas()[0] for name in routes])
    if variant == "per-route":
        return np.array([stack(s) for s in own])
    if variant == "eb":
        return _empirical_bayes(r, routes)
    total = [sum(s[i] for s in own) for i in range(5)]
    if variant == "pooled":
        return np.array([stack(total)] * len(routes))
    n = sum(r.routes[name].n for name in routes)
    k = float(variant.split("-")[1])
    return np.array([stack([s[i] + k * total[i] / n for i in range(5)]) for s in own])


class Parts(NamedTuple):
    """The trained router's pieces of every route's reward score on held-out tasks, and the exact truth."""

    routes: list[str]
    f: np.ndarray  # (tasks, routes): contextual parts
    means: np.ndarray  # (routes,)
    dg: np.ndarray  # (tasks, routes): group offsets
    se: np.ndarray  # (tasks, routes): standard errors
    truth: np.ndarray  # (tasks, routes): exact expected rewards; -inf where the route was not offered
    shared: np.ndarray  # (tasks,): the shared part of every route's contextual part
    groups: list[str | None]  # (tasks,): each task's group


def parts(r: Router, test: list[dict[str, Any]], typed: bool, workload: str = "helpdesk") -> Parts:
    ix = r.reward_index()
    routes = list(ix.routes)
    feats = [r.task_features(_task(t, typed)) for t in test]
    models = [r.routes[name] for name in routes]
    truth = WORKLOADS[workload][1]
    return Parts(
        routes,
        np.array([ix.contextual(x)[: len(routes)] for x, _ in feats]),
        np.array([m.reward_mean for m in models]),
        np.array([[group_parts(m, [g])[0, 0] for m in models] for _, g in feats]),
        np.array([[m.reward_se(g) for m in models] for _, g in feats]),
        np.array([[truth(t["task"], name) if name in t.get("candidates", routes) else -np.inf for name in routes]
                  for t in test]),
        np.array([r.shared.part(x)[0] if r.shared is not None else 0.0 for x, _ in feats]),
        [g for _, g in feats],
    )


def _split_scores(r: Router, p: Parts, split: SplitSums, per_type: bool, pessimism: float) -> np.ndarray:
    lam = _weights(r, p.routes, "product")
    score = p.means + lam[:, 0] * p.dg - pessimism * p.se
    own = p.f - p.shared[:, None]
    cache: dict[tuple[str, str | None], tuple[float, float]] = {}
    for i, g in enumerate(p.groups):
        for j, name in enumerate(p.routes):
            w = cache.get((name, g))
            if w is None:
                w = cache[(name, g)] = split.weights(name, g, float(lam[j, 1]), per_type)
            score[i, j] += w[0] * own[i, j] + w[1] * p.shared[i]
    return score


def scores(r: Router, p: Parts, variant: str, pessimism: float, split: SplitSums | None = None) -> np.ndarray:
    """(tasks, routes): what ``variant`` ranks by (``product`` is the router's own score); routes a task was
    not offered rank last."""
    return np.where(np.isfinite(p.truth), _scores(r, p, variant, pessimism, split), -np.inf)


def _scores(r: Router, p: Parts, variant: str, pessimism: float, split: SplitSums | None) -> np.ndarray:
    if variant.startswith("split-"):
        if split is None:
            raise ValueError(f"{variant} needs the sums gathered while learning")
        return _split_scores(r, p, split, variant == "split-type", pessimism)
    if variant == "truth-fit":
        score = np.empty_like(p.f)
        for j in range(len(p.routes)):
            ok = np.isfinite(p.truth[:, j])
            a = np.c_[np.ones(len(p.f)), p.f[:, j], p.dg[:, j]]
            coef, *_ = np.linalg.lstsq(a[ok], p.truth[ok, j], rcond=None)
            score[:, j] = a @ coef
        return score
    lam = _weights(r, p.routes, "product" if variant == "common-1" else variant)
    lam_f = 1.0 if variant == "common-1" else lam[:, 1]
    return p.means + lam[:, 0] * p.dg + lam_f * p.f - pessimism * p.se


def _empirical_bayes(r: Router, routes: list[str]) -> np.ndarray:
    """Each route's lambda_f shrunk toward the routes' precision-weighted mean by how much of its spread from
    it is sampling noise (DerSimonian-Laird between-route variance); lambda_g its own."""
    lam = np.array([stack(r.routes[name].s_stack[0]) for name in routes])
    v = []
    for name in routes:
        m = r.routes[name]
        ff = m.s_stack[0][2]
        v.append((m.s_res[0] / m.w_sum) / ff if ff > 0 and m.w_sum > 0 else np.inf)
    v = np.array(v)
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 2:
        return lam
    w = 1.0 / v[ok]
    x = lam[ok, 1]
    mean = float(w @ x / w.sum())
    q = float(w @ (x - mean) ** 2)
    tau2 = max(0.0, (q - (ok.sum() - 1)) / (w.sum() - (w * w).sum() / w.sum()))
    shrunk = lam.copy()
    b = np.where(ok, tau2 / (tau2 + np.where(ok, v, 1.0)), 0.0)
    shrunk[:, 1] = np.where(ok, mean + b * (lam[:, 1] - mean), lam[:, 1])
    return shrunk


def look(r: Router, test: list[dict[str, Any]], typed: bool, pessimism: float, workload: str,
         split: SplitSums | None = None) -> dict[str, Any]:
    """Values of each variant's ranking on ``test`` and the per-route weights, for the router as trained."""
    p = parts(r, test, typed, workload)
    rows = np.arange(len(test))
    values = {v: round(float(p.truth[rows, scores(r, p, v, pessimism, split).argmax(axis=1)].mean()), 4)
              for v in VARIANTS if split is not None or not v.startswith("split-")}
    lam, plain = _weights(r, p.routes, "product"), _weights(r, p.routes, "per-route")
    per_route = {}
    for j, name in enumerate(p.routes):
        ok = np.isfinite(p.truth[:, j])
        t = p.truth[ok, j] - p.means[j] - lam[j, 0] * p.dg[ok, j]
        f = p.f[ok, j]
        ff = float(f @ f)
        per_route[name] = {
            "n": r.routes[name].n,
            "lambda_f": round(float(lam[j, 1]), 3),
            "lambda_f_plain": round(float(plain[j, 1]), 3),
            "lambda_now": round(float(f @ t) / ff, 3) if ff > 0 else 0.0,
            "corr": round(float(np.corrcoef(f, p.truth[ok, j])[0, 1]), 3) if len(f) > 1 and f.std() > 0 else 0.0,
        }
    return {"values": values, "routes": per_route}


def run(seed: int, sizes: list[int], typed: bool, pessimism: float, n_test: int,
        workload: str = "helpdesk") -> list[dict[str, Any]]:
    make = WORKLOADS[workload][0]
    rows = make(seed).generate(max(sizes))
    test = make(10_000 + seed).generate(n_test)
    r = Router(pessimism=pessimism)
    split = SplitSums()
    seen: set[str] = set()
    out = []
    for i, row in enumerate(rows, 1):
        task = _task(row, typed)
        x, group = r.task_features(task)
        d, o = row["decision"], row["outcome"]
        novel = task["input"] not in seen
        if novel:
            split.add(r, x, d["route"], group, o["reward"])
        r.learn(x, d["route"], propensity=d["propensity"], reward=o["reward"], error=o["error"],
                latency_ms=o["latency_ms"], group=group, novel=novel)
        seen.add(task["input"])
        if i in sizes:
            out.append({"n": i, **look(r, test, typed, pessimism, workload, split)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=sorted(WORKLOADS), default="helpdesk")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--sizes", default="1000,5000,20000")
    ap.add_argument("--typed", action="store_true", help="keep task.task_type (default: removed)")
    ap.add_argument("--pessimism", type=float, default=1.0)
    ap.add_argument("--test", type=int, default=2000, help="held-out tasks per look")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = {seed: run(seed, sizes, args.typed, args.pessimism, args.test, args.workload) for seed in seeds}
    print(f"{args.workload}, {'typed' if args.typed else 'untyped'}, pessimism {args.pessimism}: true value of the "
          f"ranking, mean over seeds {seeds}")
    print(f"{'n':>7s} " + " ".join(f"{v:>10s}" for v in VARIANTS))
    table = []
    for i, n in enumerate(sizes):
        means = {v: round(statistics.mean(runs[s][i]["values"][v] for s in seeds), 4) for v in VARIANTS}
        table.append({"n": n, **means})
        print(f"{n:>7,d} " + " ".join(f"{means[v]:>10.3f}" for v in VARIANTS))
    last = runs[seeds[0]][-1]
    print(f"\nseed {seeds[0]}, n={last['n']:,}: per route, the weight the product uses (plain: without stack_now) "
          "and the one that fits the truth")
    for name, v in last["routes"].items():
        print(f"  {name:18s} n={v['n']:6d} lambda_f={v['lambda_f']:5.2f} (plain {v['lambda_f_plain']:5.2f}) "
              f"lambda_now={v['lambda_now']:5.2f} "
              f"corr={v['corr']:5.2f}")
    result = {"workload": args.workload, "typed": args.typed, "pessimism": args.pessimism, "seeds": seeds,
              "mean": table, "runs": {str(s): v for s, v in runs.items()}}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
