"""Learning-quality benchmark: how good is the router memabrad learns, against exact ground truth.

    .venv/bin/python bench/quality.py                       # 1k / 5k / 20k logged trajectories
    .venv/bin/python bench/quality.py --quick               # small sizes, a smoke run
    .venv/bin/python bench/quality.py --workloads hard,pareto --out bench/quality-results.json
    .venv/bin/python bench/quality.py --untyped             # task.task_type removed (agents that send none)
    .venv/bin/python bench/quality.py --untyped --cyrillic  # and the texts in another script

Seeded: the same command prints the same numbers (up to Vowpal Wabbit's float summation).
For every workload one logged stream is generated; memabrad's real learning path
(``Config()`` -> ``RouterLearner.new`` -> ``observe(parse_trajectory(bytes))``) and Vowpal Wabbit
``--cb_adf -q UA`` (shared namespace U: the words of ``task.input`` and the task type; namespace
A: the route id; cost = -reward, with the logged propensity) learn the same stream, and at each
size (1k, 5k, 20k: a look, as the daemon takes one every ``min_new_trajectories``) we report:

- ``logging``: true value of the logging policy;
- ``best single``: true value of the best context-free route;
- ``oracle``: true value of the per-context (or per-family) best route, where exactly known;
- ``VW``: true value of VW's greedy policy; ``memabrad``: true value of memabrad's challenger
  (greedy ``Router.best`` over features with the case-index hint, as the daemon serves it); per
  portfolio member, its true value and (JSON ``members_predicted_value``) the mean reward it predicts
  for the routes it picks on the truth's tasks: where the two differ, the router is miscalibrated
  where it chooses;
- ``gate``: memabrad's own off-policy estimate of challenger - logging on its held-out window
  and the verdict of the promotion gates (``promotion.evaluation.evaluate`` with the logging
  policy as baseline, default ``PolicySettings``), exactly the daemon's evaluation call.

Workloads and their ground truth:

- ``sim``: ``memabrad.sim.Simulator`` (seeded); truth = ``true_value`` over 20,000 fixed contexts
  (exact expected outcome per context; the same contexts for every policy). Best single = the
  best static route ranking (20% of tasks offer only 3-5 routes); oracle = ``oracle_policy``.
- ``helpdesk``: ``memabrad.sim.helpdesk.HelpdeskWorkload``; reward depends on the task type only
  (``EXPECTED_REWARD``), truth = exact expected reward averaged over 5,000 fixed tasks; oracle =
  the per-type best (``true_reward`` gives it exactly under the template mix, also in the JSON).
- ``hard``: ``memabrad.sim.hard.HardWorkload``: 12 priced LLMs, reward = correct - 5 * USD,
  long shared few-shot prompts, two near-chance families, 70% ``llm/mid`` + 30% uniform logging;
  truth exact over 5,000 fixed contexts; oracle = per-(family, level) best.
- ``tokens``, ``priced``: ``memabrad.sim.numeric``: the best route depends only on numbers in
  ``task.features`` (token count, code, turns; cost in USD, latency budget, tier, documents), the
  texts are random words; truth exact over 5,000 fixed contexts; oracle = per-context best; best
  single = one route wherever offered. ``priced`` was written after the numeric features changed
  and is held out of every tuning loop.
- ``guarded`` (same module): the most rewarding routes are slow and fail more often, so the
  latency and error-rate guardrails press; truth (reward, error rate, latency) exact over 5,000
  fixed contexts. Written to judge guardrail prices, held out of their tuning.
- ``drift``: ``tokens`` until 5,000 trajectories, then its code tool breaks (the agent's tool API
  changed): values are in the world after the break. Never tuned on.
- ``pareto``: real data, ``pareto_bandit/data/examples/{val,test_holdout}.jsonl`` of the PyPI
  package ``paretobandit==0.1.1`` (Apache-2.0; fetched with ``pip download --no-deps`` into the
  cache dir): 3,609 prompts x 3 LLMs, each with a reward in [0, 1] and a USD cost. Reward =
  reward - 5 * cost. Logging: 70% to the mid-price model (mistral-large) + 30% uniform (exact
  propensities 0.8 / 0.1 / 0.1); observed reward = the known reward of the logged model, so a
  trajectory's outcome is exact, not sampled. Train prompts = ``val.jsonl`` (1,785), held out =
  ``test_holdout.jsonl`` (1,824); the log cycles through seeded permutations of the train prompts
  (so 5k and 20k repeat each prompt ~3 and ~11 times, with fresh logging draws); truth of a policy
  = mean known reward of its choice over the held-out prompts (exact); oracle = per-prompt best.
  task_type = the prompt's ``source`` benchmark; the dataset's ``difficulty``/``best_arm`` labels
  are not shown to the learners.
- ``obd``: the Open Bandit Dataset sample shipped in the ``obp==0.5.7`` sdist (CC BY 4.0 data, code
  Apache-2.0; ``pip download --no-deps --no-binary :all: --ignore-requires-python``, the sdist
  declares Python < 3.11): ``obd/random/all/all.csv`` and ``obd/bts/all/all.csv``, 10,000
  impressions each, 80 items, 3 positions, reward = click. The contract allows 64 candidates,
  so candidates = the 64 items the BTS policy shows most (97.9% of its impressions); rows of
  other items are dropped. Propensity: BTS rows keep the logged propensity (the BTS mass outside
  the 64 items, ~2% on average, is not renormalised: unknown per row), uniform-random rows get
  1/64 (exact once restricted). The random log is split 50/50 by a seeded hash; the training pool
  = BTS rows + the random train half (the log cycles through seeded permutations of it to reach
  20k), the other half is held out. No exact truth: a policy's value is its IPS estimate on the
  held-out random half (propensity 1/64) with the exact (Clopper-Pearson) 95% interval of the
  click rate on the held-out rows where the policy's item was shown; logging = the pool's click
  rate (± a normal 95% half-width); best
  single = the item with the best click rate on the random train half, valued on the held-out
  half. With ~0.4% CTR, nothing is expected to separate from the logging policy at these sizes.
- ``digits``, ``wine``, ``cancer``: classification datasets bundled with scikit-learn (the UCI optical
  digits, 1,797 x 64 pixel counts, 10 classes; wine, 178 x 13 measurements, 3 classes; breast cancer
  Wisconsin, 569 x 30 measurements, 2 classes) as contextual bandits, the classic check of off-policy
  learners: one route per class, reward 1 for the right one. Every task has the same text and the
  example's numbers in ``task.features``; logging 70% to ``class-0`` + 30% uniform; the log cycles
  through seeded permutations of a 70% training split, truth = exact accuracy on the other 30%. Added
  after every default was set; nothing was tuned on them (digits found a bug: tasks were keyed by
  their text alone, ``memabrad/learning/task_identity.py``).
- ``segment``, ``phishing``, ``bananas``, ``yeast``: the classification datasets bundled with river (image
  segments, 2,310 x 18, 7 classes; phishing pages, 1,250 x 9, 2 classes; bananas, 5,300 x 2, two interleaved
  classes no line separates; yeast genes, 2,417 x 103, 14 classes of which an example has several, every
  one a right route), the same way. Added as held-out checks when this list already had the four
  above and after every default was set; nothing was tuned on them.
- ``tools``: ``memabrad.sim.tools.ToolsWorkload``: an assistant's general LLM and fourteen tools, each
  right for one of twelve intents; short untyped requests from templates with names, places and numbers;
  logging 70% to the general model + 30% uniform (a tool sees ~2% of the traffic); Bernoulli rewards,
  truth exact (``expected_reward``) over 5,000 fixed requests; oracle = per-intent best. Written after
  every default was set, as a check on traffic unlike the others: routes tried rarely, on short requests
  (``docs/benchmarks.md``, "A tool desk").
- ``embed``: an agent that sends a dense, signed embedding of each task (32 standard normal numbers) in
  ``task.features`` with one fixed text; route k succeeds with probability sigmoid(w_k . x); logging 70%
  to ``r0`` + 30% uniform; truth exact over 5,000 fixed embeddings. Added with the three above, never tuned on.

Nothing in memabrad is tuned here: default ``Config()`` throughout.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import itertools
import json
import os
import platform
import random
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from scipy.stats import beta  # noqa: E402

from memabrad.config import Config, load_config  # noqa: E402
from memabrad.evaluation.estimators import mean_interval  # noqa: E402
from memabrad.learning.features import TaskView  # noqa: E402
from memabrad.learning.learner import RouterLearner, Selector  # noqa: E402
from memabrad.learning.router import Router  # noqa: E402
from memabrad.learning.snapshot import LearnerSnapshot  # noqa: E402
from memabrad.promotion.evaluation import evaluate  # noqa: E402
from memabrad.promotion.policy import PolicySettings  # noqa: E402
from memabrad.promotion.portfolio import selector  # noqa: E402
from memabrad.sim.rows import Clock  # noqa: E402
from memabrad.wire.parse import parse_trajectory  # noqa: E402

Policy = Callable[[Mapping[str, Any], Sequence[str]], str]
PB_SPEC = "paretobandit==0.1.1"
OBP_SPEC = "obp==0.5.7"
PB_LAMBDA = 5.0
PB_LOGGING_MODEL = "mistralai/mistral-large-2512"
LOG_SHARE = 0.7  # share of traffic the skewed logging policies send to their default route
OBD_MAX_CANDIDATES = 64
START = datetime(2026, 1, 1, tzinfo=UTC)


_CLOCK = Clock(START)


def _at(i: int) -> str:
    return _CLOCK.format(500 * i)


def _row(router_id: str, i: int, task: dict[str, Any], candidates: list[str], route: str, propensity: float,
         reward: float, error: bool = False, latency_ms: float = 0.0) -> dict[str, Any]:
    """A trajectory v1 dict (CONTRACT §2)."""
    return {
        "schema_version": 1,
        "trajectory_id": f"{router_id}-{i:08d}",
        "router_id": router_id,
        "occurred_at": _at(i),
        "task": task,
        "candidates": candidates,
        "decision": {"route": route, "propensity": propensity, "router_version": "logging"},
        "outcome": {"reward": reward, "error": error, "latency_ms": latency_ms},
    }


def _skewed_probs(candidates: Sequence[str], default: str, share: float = LOG_SHARE) -> dict[str, float]:
    explore = (1.0 - share) / len(candidates)
    return {c: explore + (share if c == default else 0.0) for c in candidates}


def _epochs(n_items: int, n: int, rng: random.Random) -> Iterator[int]:
    """``n`` indices: seeded permutations of ``range(n_items)``, one after another."""
    emitted = 0
    while emitted < n:
        order = list(range(n_items))
        rng.shuffle(order)
        yield from order[: n - emitted]
        emitted += min(n_items, n - emitted)


# -- workloads ----------------------------------------------------------------------------------------


@dataclass
class Value:
    """A policy value; ``half`` is the 95% CI half-width where the value is an estimate (OBD)."""

    value: float
    half: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": round(self.value, 6)}
        if self.half is not None:
            out["ci95_half_width"] = round(self.half, 6)
        out.update(self.extra)
        return out


@dataclass
class Workload:
    name: str
    router_id: str
    exact: bool
    stream: Callable[[int], Iterator[dict[str, Any]]]
    value: Callable[[Policy], Value]
    logging: Value
    best_single: tuple[str, Value]
    oracle: Value | None
    digits: int = 3
    meta: dict[str, Any] = field(default_factory=dict)
    # truth on the training contexts themselves (real data whose prompts repeat in the log)
    value_in_sample: Callable[[Policy], Value] | None = None
    logging_in_sample: Value | None = None


def mixed_value(tasks: Iterator[tuple[Mapping[str, Any], Mapping[str, float]]],
                expected: Callable[[Mapping[str, Any], str], float],
                outcome: Callable[[Mapping[str, Any], str], tuple[float, float]] | None) -> Value:
    """The exact value of choosing each task's routes with the given probabilities: mean expected reward,
    and with ``outcome`` (mean latency in ms, error probability) the mean error rate and latency too."""
    rew = err = lat = 0.0
    n = 0
    for t, dist in tasks:
        n += 1
        for r, p in dist.items():
            rew += p * expected(t, r)
            if outcome is not None:
                ms, e = outcome(t, r)
                lat, err = lat + p * ms, err + p * e
    extra = {"error_rate": round(err / n, 6), "latency_ms": round(lat / n, 3)} if outcome is not None else {}
    return Value(rew / n, None, extra)


def sim_workload(seed: int, n_contexts: int) -> Workload:
    from memabrad.sim import Simulator, oracle_policy, true_value, true_value_of_logging, type_only_policy
    from memabrad.sim.value import _contexts
    from memabrad.sim.world import default_world

    world = default_world()
    sim = Simulator(seed=seed, router_id="sim")
    contexts = _contexts(world, sim.routes, 12345, n_contexts)
    means = {r: sum(world.expected_outcome(ctx, r).reward for _, _, ctx in contexts) / len(contexts)
             for r in sim.routes}
    ranking = sorted(sim.routes, key=lambda r: -means[r])

    def ranked(_task: Mapping[str, Any], cands: Sequence[str]) -> str:
        return next(r for r in ranking if r in cands)

    def of(v: Any) -> Value:
        return Value(v.reward, None, {"error_rate": round(v.error_rate, 6), "latency_ms": round(v.latency_ms, 3)})

    def value(policy: Policy) -> Value:
        return of(true_value(policy, n_contexts=n_contexts, seed=12345))

    return Workload(
        name="sim", router_id="sim", exact=True,
        stream=lambda n: Simulator(seed=seed, router_id="sim").iter_generate(n),
        value=value,
        logging=of(true_value_of_logging(sim, n_contexts=n_contexts, seed=12345)),
        best_single=(ranking[0], value(ranked)),
        oracle=value(oracle_policy(world)),
        meta={"truth": f"exact expected reward over {n_contexts} fixed contexts (seed 12345)",
              "logging_policy": f"epsilon-greedy over fixed_policy, epsilon {sim.epsilon}",
              "best_single_is": "static ranking " + " > ".join(ranking) + " (first offered)",
              "type_only_ceiling": round(value(type_only_policy(world)).value, 6),
              "route_means": {r: round(v, 6) for r, v in means.items()}},
    )


def helpdesk_workload(seed: int, n_contexts: int) -> Workload:
    from memabrad.sim.helpdesk import (
        ERROR_RATE,
        EXPECTED_REWARD,
        LATENCY_MS,
        LOGGING_RULE,
        ROUTES,
        HelpdeskWorkload,
        true_reward,
    )

    tasks = [r["task"] for r in HelpdeskWorkload(seed=10_000 + seed).generate(n_contexts)]
    eps = HelpdeskWorkload().epsilon

    def mixed(dist: Callable[[Mapping[str, Any]], Mapping[str, float]]) -> Value:
        # exact: E[latency] = LATENCY_MS (the workload draws LATENCY_MS * U(0.5, 1.5))
        return mixed_value(((t, dist(t)) for t in tasks), lambda t, r: EXPECTED_REWARD[t["task_type"]][r],
                           lambda _t, r: (LATENCY_MS[r], ERROR_RATE[r]))

    def value(policy: Policy) -> Value:
        cands = list(ROUTES)
        return mixed(lambda t: {policy(t, cands): 1.0})

    def logging_value() -> Value:
        k = len(ROUTES)
        return mixed(lambda _t: {r: eps / k + (1 - eps if r == LOGGING_RULE else 0.0) for r in ROUTES})

    singles = {r: value(lambda _t, _c, r=r: r).value for r in ROUTES}
    best = max(singles, key=singles.get)
    per_type = {t: max(ROUTES, key=lambda r, t=t: EXPECTED_REWARD[t][r]) for t in EXPECTED_REWARD}
    return Workload(
        name="helpdesk", router_id="helpdesk", exact=True,
        stream=lambda n: HelpdeskWorkload(seed=seed).iter_generate(n),
        value=value,
        logging=logging_value(),
        best_single=(best, value(lambda _t, _c: best)),
        oracle=value(lambda t, _c: per_type[t["task_type"]]),
        meta={"truth": f"exact expected reward (EXPECTED_REWARD) over {n_contexts} fixed tasks",
              "logging_policy": f"epsilon-greedy over {LOGGING_RULE}, epsilon {eps}",
              "oracle_is": "per task type best", "oracle_under_template_mix": round(true_reward(per_type), 6),
              "best_single_under_template_mix": round(true_reward(dict.fromkeys(per_type, best)), 6)},
    )


def hard_workload(seed: int, n_contexts: int) -> Workload:
    from memabrad.sim.hard import LAMBDA, LOGGING_ROUTE, MIX, PRICE_USD, HardWorkload

    hw = HardWorkload(seed=seed, router_id="hard")
    best = hw.best_single_route()

    def of(v: Any) -> Value:
        return Value(v.reward, None, {"accuracy": round(v.accuracy, 6), "cost_usd": round(v.cost_usd, 6),
                                      "error_rate": round(v.error_rate, 6), "latency_ms": round(v.latency_ms, 3)})

    def value(policy: Policy) -> Value:
        return of(hw.true_value(policy, n_contexts=n_contexts))

    return Workload(
        name="hard", router_id="hard", exact=True,
        stream=lambda n: HardWorkload(seed=seed, router_id="hard").iter_generate(n),
        value=value,
        logging=of(hw.true_value_of_logging(n_contexts, seed=12345)),
        best_single=(best, value(lambda _t, _c: best)),
        oracle=value(hw.oracle_policy()),
        meta={"truth": f"exact expected reward over {n_contexts} fixed contexts (seed 12345)",
              "reward": f"correct - {LAMBDA} * price_usd", "prices_usd": PRICE_USD,
              "logging_policy": f"{LOG_SHARE:.0%} {LOGGING_ROUTE} + 30% uniform over 12 routes",
              "oracle_is": "per (family, level) best: " + ", ".join(
                  f"{f}/{lvl}={r}" for (f, lvl), r in hw.oracle_choice().items()),
              "population_values": {"logging_route": round(hw.population_value(dict.fromkeys(MIX, LOGGING_ROUTE)), 6),
                                    "best_single": round(hw.population_value(dict.fromkeys(MIX, best)), 6),
                                    "oracle": round(hw.population_value(hw.oracle_choice()), 6)}},
    )


def best_within_guardrails(world: Any, fixed: Sequence[tuple[Any, list[str]]], logging: Value,
                           share: float = 1.0) -> dict[str, Any]:
    """The best deterministic policy whose true error rate and latency stay within ``share`` of the promotion
    allowances over the logging agent's (``Config().promotion``): what a promotable router could reach, where
    the best routes cost errors or latency. A per-task argmax of ``reward - a * error - b * latency`` over a
    grid of prices (a Lagrangian search: exact for the constraint it lands on, within a mixture of two such
    policies of the linear program's optimum)."""
    gates = Config().promotion
    max_err = logging.extra["error_rate"] + share * gates.max_error_rate_increase
    max_lat = logging.extra["latency_ms"] + share * gates.max_latency_increase_ms
    routes = list(world.routes)
    exp = np.array([[world.expected(t, r) if r in cs else -np.inf for r in routes] for t, cs in fixed])
    out = np.array([[world.outcome(t, r) for r in routes] for t, _ in fixed])  # (tasks, routes, (ms, error))
    lat, err = out[..., 0], out[..., 1]
    rows = np.arange(len(fixed))
    best: dict[str, Any] = {}
    for a in np.linspace(0.0, 20.0, 81):
        for b in np.linspace(0.0, 0.001, 41):
            pick = np.argmax(exp - a * err - b * lat, axis=1)
            e, ms, v = err[rows, pick].mean(), lat[rows, pick].mean(), exp[rows, pick].mean()
            if e <= max_err + 1e-12 and ms <= max_lat + 1e-9 and v > best.get("value", -np.inf):
                best = {"value": round(float(v), 6), "error_rate": round(float(e), 6),
                        "latency_ms": round(float(ms), 3), "error_price": round(float(a), 4),
                        "latency_price_per_ms": round(float(b), 7)}
    return best


def numeric_workload(name: str, seed: int, n_contexts: int) -> Workload:
    """``memabrad.sim.numeric``: the best route depends on numbers in ``task.features`` only."""
    from memabrad.sim.numeric import WORLDS, NumericWorkload, Task

    world = WORLDS[name]
    fixed = NumericWorkload(world).contexts(n_contexts)

    def mixed(dist: Callable[[Task, list[str]], Mapping[str, float]]) -> Value:
        return mixed_value(((t, dist(t, cs)) for t, cs in fixed), world.expected, world.outcome)

    def value(policy: Policy) -> Value:
        return mixed(lambda t, cs: {policy(t, cs): 1.0})

    def logging_value() -> Value:
        return mixed(lambda _t, cs: world.logging_probs(cs))

    def single(route: str) -> Policy:  # the route where offered, else the logging agent's route
        return lambda _t, cs: route if route in cs else world.logging_route

    singles = {r: value(single(r)).value for r in world.routes}
    best = max(singles, key=singles.get)
    logging = logging_value()
    guarded = {} if world.outcome is None else {
        "best_within_guardrails": best_within_guardrails(world, fixed, logging),
        "best_within_half_guardrails": best_within_guardrails(world, fixed, logging, 0.5)}
    return Workload(
        name=name, router_id=name, exact=True,
        stream=lambda n: NumericWorkload(world, seed=seed).iter_generate(n),
        value=value, logging=logging, best_single=(best, value(single(best))),
        oracle=value(lambda t, cs: max(cs, key=lambda r: world.expected(t, r))),
        meta={"truth": f"exact expected reward over {n_contexts} fixed contexts (seed 12345)",
              "logging_policy": f"{world.logging_share:.0%} {world.logging_route} + uniform over the offered routes",
              "oracle_is": "per-context best", "single_route_values": {r: round(v, 6) for r, v in singles.items()},
              **guarded},
    )


CLASSES_TEXT = "classify this item"  # one fixed text: every bit of the context is in the numbers
CLASSES = {"digits": "load_digits", "wine": "load_wine", "cancer": "load_breast_cancer"}
# Datasets bundled with river, added as held-out checks after every default was set (nothing tuned on them).
# yeast is multi-label: an example belongs to several of 14 classes and every one of them is a right route,
# as where several tools or models would each do.
RIVER_CLASSES = {"segment": "ImageSegments", "phishing": "Phishing", "bananas": "Bananas", "yeast": "Yeast"}
CLASS_DATASETS = (*CLASSES, *RIVER_CLASSES)  # the classification datasets of the default run
# Bundled with river, run on request only (``--workloads shuttle``), added after every default was set: rare
# anomalies among 49,097 space-shuttle sensor readings, the majority class right 93 % of the time.
PROBE_RIVER_CLASSES = {"shuttle": "Shuttle"}
# River's synthetic classification streams, a fixed pool of ``SYNTH_POOL`` examples each: probes of other kinds
# of numeric traffic (bounded, binary, categorical codes, large raw scales), run on request
# (``--workloads waveform,led,rbf,agrawal,sea,mixed``), never in a tuning loop.
def _synth(kind: str, **kw: Any) -> Callable[[], Any]:
    def make() -> Any:
        from river.datasets import synth

        return getattr(synth, kind)(**kw)
    return make


SYNTH_CLASSES: dict[str, Callable[[], Any]] = {
    "waveform": _synth("Waveform", seed=7),
    "led": _synth("LED", seed=7, noise_percentage=0.1, irrelevant_features=True),
    "rbf": _synth("RandomRBF", seed_model=7, seed_sample=8, n_classes=5, n_features=10),
    "agrawal": _synth("Agrawal", classification_function=2, seed=7, balance_classes=True),
    "sea": _synth("SEA", variant=0, noise=0.1, seed=7),
    "mixed": _synth("Mixed", seed=7, balance_classes=True),
}
SYNTH_POOL = 3000


class ClassData(NamedTuple):
    """A classification dataset: numbers per example, their names, each example's right classes (indices
    into ``labels``), the class names, and where it is from."""

    xs: np.ndarray
    names: list[str]
    right: list[frozenset[int]]
    labels: list[str]
    source: str


def _class_data(name: str) -> ClassData:
    if name in CLASSES:
        import sklearn.datasets

        data = getattr(sklearn.datasets, CLASSES[name])()
        xs = np.asarray(data.data, dtype=float)
        names = [str(f).replace(" ", "_") for f in getattr(data, "feature_names", [])] or [
            f"x{j}" for j in range(xs.shape[1])]
        ys = [int(v) for v in data.target]
        labels = sorted(set(ys))
        return ClassData(xs, names, [frozenset([labels.index(y)]) for y in ys], [str(c) for c in labels],
                         f"sklearn.datasets.{CLASSES[name]}()")
    from river import datasets

    if name in SYNTH_CLASSES:
        rows = list(itertools.islice(SYNTH_CLASSES[name](), SYNTH_POOL))
        names = sorted(rows[0][0], key=str)
        xs = np.asarray([[float(x[k]) for k in names] for x, _ in rows], dtype=float)
        labels = sorted({str(y) for _, y in rows})
        return ClassData(xs, [f"x{k}" if not isinstance(k, str) else k for k in names],
                         [frozenset([labels.index(str(y))]) for _, y in rows], labels,
                         f"river.datasets.synth ({name}, the first {SYNTH_POOL:,})")
    kind = RIVER_CLASSES.get(name) or PROBE_RIVER_CLASSES[name]
    rows = list(getattr(datasets, kind)())
    names = sorted(rows[0][0])
    xs = np.asarray([[float(x[k]) for k in names] for x, _ in rows], dtype=float)
    if isinstance(rows[0][1], dict):  # multi-label: the classes marked True
        labels = sorted(rows[0][1], key=lambda c: (len(c), c))
        right = [frozenset(j for j, c in enumerate(labels) if y[c]) for _, y in rows]
    else:
        labels = sorted({str(y) for _, y in rows})
        right = [frozenset([labels.index(str(y))]) for _, y in rows]
    return ClassData(xs, [n.replace(" ", "_") for n in names], right, labels,
                     f"river.datasets.{kind}()")


def classes_workload(name: str, seed: int, share: float = LOG_SHARE) -> Workload:
    """A classification dataset bundled with scikit-learn or river as a contextual bandit, the classic test
    of off-policy learners: one route per class, reward 1 for a right class, else 0; the task is one
    fixed text and the example's numbers in ``task.features`` (an agent that routes on numbers alone).
    Logging: ``share`` (70%) to the first class's route + the rest uniform, exact propensities. A seeded 70 / 30 split:
    the log cycles through seeded permutations of the training examples, truth = exact accuracy of a
    policy's choice on the held-out ones."""
    xs, names, right, labels, source = _class_data(name)
    routes = [f"class-{c}" for c in labels]  # scikit-learn's labels are 0..k-1
    order = list(range(len(right)))
    random.Random(seed).shuffle(order)
    cut = int(0.7 * len(order))
    train, test = order[:cut], order[cut:]
    probs = _skewed_probs(routes, routes[0], share)

    def task(i: int) -> dict[str, Any]:
        return {"input": CLASSES_TEXT, "features": {n: float(v) for n, v in zip(names, xs[i], strict=True)}}

    tasks = [(task(i), {routes[j] for j in right[i]}) for i in test]

    weights = [probs[r] for r in routes]

    def stream(n: int) -> Iterator[dict[str, Any]]:
        rng = random.Random(seed + 101)
        for k, j in enumerate(_epochs(len(train), n, random.Random(seed + 202))):
            i = train[j]
            route = rng.choices(routes, weights=weights)[0]
            yield _row(name, k, task(i), list(routes), route, probs[route],
                       1.0 if routes.index(route) in right[i] else 0.0)

    def value(policy: Policy) -> Value:
        return Value(sum(policy(t, list(routes)) in ok for t, ok in tasks) / len(tasks))

    right_share = Counter(r for _, ok in tasks for r in ok)
    best = max(routes, key=lambda r: (right_share[r], r == routes[0]))
    multi = any(len(ok) > 1 for _, ok in tasks)
    return Workload(
        name=name, router_id=name, exact=True, stream=stream, value=value,
        logging=Value(sum(sum(probs[r] for r in ok) for _, ok in tasks) / len(tasks)),
        best_single=(best, Value(right_share[best] / len(tasks))),
        oracle=Value(sum(1 for _, ok in tasks if ok) / len(tasks)),
        meta={"truth": f"exact accuracy over the {len(test)} held-out examples of {source} ({len(right)} examples, "
                       f"{xs.shape[1]} numbers, {len(routes)} classes{', several right per example' if multi else ''})",
              "logging_policy": f"{share:.0%} {routes[0]} + uniform over the {len(routes)} routes",
              "task": f"input {CLASSES_TEXT!r}, the numbers in task.features; no task_type"},
    )


def tools_workload(seed: int, n_contexts: int) -> Workload:
    from memabrad.sim.tools import ROUTES, ToolsWorkload, expected_reward, logging_probability, sample_request

    rng = random.Random(f"memabrad-tools:truth:{n_contexts}")
    tasks = [sample_request(rng) for _ in range(n_contexts)]
    cands = list(ROUTES)

    def value(policy: Policy) -> Value:
        return Value(sum(expected_reward(i, policy({"input": text}, cands)) for text, i in tasks) / len(tasks))

    singles = {r: value(lambda _t, _c, r=r: r).value for r in ROUTES}
    best = max(singles, key=singles.get)
    logging = {r: logging_probability(r) for r in ROUTES}
    return Workload(
        name="tools", router_id="tools", exact=True, stream=lambda n: ToolsWorkload(seed=seed).iter_generate(n),
        value=value,
        logging=mixed_value((({"intent": i}, logging) for _, i in tasks),
                            lambda t, r: expected_reward(t["intent"], r), None),
        best_single=(best, Value(singles[best])),
        oracle=Value(sum(max(expected_reward(i, r) for r in ROUTES) for _, i in tasks) / len(tasks)),
        meta={"truth": f"exact success probability over {n_contexts} fixed requests",
              "logging_policy": "70% llm/general + uniform over the 15 routes",
              "task": "a short request in task.input; no task_type, no numbers"},
    )


EMBED_DIMS, EMBED_ROUTES = 32, 4


def embed_workload(seed: int, n_contexts: int) -> Workload:
    """An agent that sends a dense, signed embedding of each task (32 numbers, standard normal) in
    ``task.features`` and one fixed text: route k succeeds with probability sigmoid(w_k . x) (fixed random
    w_k, seeded). Logging: 70% to ``r0`` + 30% uniform; truth exact over ``n_contexts`` fixed embeddings."""
    w = np.random.default_rng(20261204).normal(size=(EMBED_ROUTES, EMBED_DIMS)) * (2.5 / EMBED_DIMS ** 0.5)
    routes = [f"r{k}" for k in range(EMBED_ROUTES)]
    probs = _skewed_probs(routes, routes[0])

    def success(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(w @ x)))

    def task(x: np.ndarray) -> dict[str, Any]:
        return {"input": "route this request", "features": {f"e{j}": round(float(v), 4) for j, v in enumerate(x)}}

    fixed = [np.random.default_rng([12345, i]).normal(size=EMBED_DIMS) for i in range(n_contexts)]
    truth = [(t, success(np.array(list(t["features"].values())))) for t in map(task, fixed)]

    def stream(n: int) -> Iterator[dict[str, Any]]:
        rng, pick = np.random.default_rng([seed, 1]), random.Random(seed + 303)
        for i in range(n):
            t = task(rng.normal(size=EMBED_DIMS))
            p = success(np.array(list(t["features"].values())))
            route = pick.choices(routes, weights=[probs[r] for r in routes])[0]
            k = routes.index(route)
            yield _row("embed", i, t, list(routes), route, probs[route], float(pick.random() < p[k]))

    def value(policy: Policy) -> Value:
        return Value(float(np.mean([p[routes.index(policy(t, list(routes)))] for t, p in truth])))

    singles = {r: value(lambda _t, _c, r=r: r).value for r in routes}
    best = max(singles, key=singles.get)
    return Workload(
        name="embed", router_id="embed", exact=True, stream=stream, value=value,
        logging=Value(float(np.mean([sum(probs[r] * p[k] for k, r in enumerate(routes)) for _, p in truth]))),
        best_single=(best, Value(singles[best])), oracle=Value(float(np.mean([p.max() for _, p in truth]))),
        meta={"truth": f"exact success probability over {n_contexts} fixed embeddings",
              "logging_policy": f"{LOG_SHARE:.0%} r0 + uniform over {EMBED_ROUTES} routes",
              "task": f"input 'route this request', {EMBED_DIMS} signed numbers in task.features"},
    )


DRIFT_AT = 5_000  # the drift workload's code tool breaks after this many trajectories


def drift_workload(seed: int, n_contexts: int) -> Workload:
    """``tokens`` whose code tool breaks after ``DRIFT_AT`` trajectories: every value is in the world after
    the break (at 1k and 5k: how the router would do if it broke now; at 20k: 15,000 trajectories after)."""
    from itertools import chain

    from memabrad.sim.numeric import TOKENS, TOKENS_BROKEN, NumericWorkload

    after = numeric_workload("tokens_broken", seed, n_contexts)

    def stream(n: int) -> Iterator[dict[str, Any]]:
        return chain(NumericWorkload(TOKENS, seed, "drift").iter_generate(min(n, DRIFT_AT)),
                     NumericWorkload(TOKENS_BROKEN, seed + 1000, "drift").iter_generate(max(0, n - DRIFT_AT)))

    meta = {**after.meta, "drift": f"tokens until {DRIFT_AT:,} trajectories, then its code tool breaks (0.92 "
                                   "for code tasks -> 0.10); truth is the world after the break"}
    return Workload(name="drift", router_id="drift", exact=True, stream=stream, value=after.value,
                    logging=after.logging, best_single=after.best_single, oracle=after.oracle, meta=meta)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(spec: str, cache: Path, *, sdist: bool) -> Path:
    """The package archive of ``spec`` in ``cache`` (downloaded once, with pip)."""
    d = cache / spec.replace("==", "-")
    found = sorted(d.glob("*.tar.gz")) if sdist else sorted(d.glob("*.whl"))
    if found:
        return found[0]
    d.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", str(d)]
    if sdist:
        cmd += ["--no-binary", ":all:", "--ignore-requires-python"]
    subprocess.run([*cmd, spec], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    found = sorted(d.glob("*.tar.gz")) if sdist else sorted(d.glob("*.whl"))
    if not found:
        raise RuntimeError(f"pip download {spec} left no archive in {d}")
    return found[0]


def _pareto_prompts(cache: Path) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    """``PB_SPEC``'s wheel (fetched once into ``cache``) and its judged prompts: train (``val.jsonl``) and held out."""
    wheel = fetch(PB_SPEC, cache, sdist=False)
    with zipfile.ZipFile(wheel) as z:
        def load(name: str) -> list[dict[str, Any]]:
            text = z.read(f"pareto_bandit/data/examples/{name}").decode("utf-8")
            return [json.loads(line) for line in text.split("\n") if line.strip()]
        return wheel, load("val.jsonl"), load("test_holdout.jsonl")


def pareto_workload(seed: int, cache: Path, *, lam: float = PB_LAMBDA, logging_model: str = PB_LOGGING_MODEL,
                    share: float = LOG_SHARE) -> Workload:
    """``lam``, ``logging_model``, ``share``: the cost weight and the logging agent (defaults: the judged
    workload; other values probe other agents' traffic, ``--pareto-lambda`` and friends)."""
    wheel, train, held = _pareto_prompts(cache)
    models = list(train[0]["arms"])
    if logging_model not in models:
        raise KeyError(f"--pareto-logging {logging_model!r} is not one of {models}")
    probs = _skewed_probs(models, logging_model, share)

    def reward(p: Mapping[str, Any], m: str) -> float:
        return p["arms"][m]["reward"] - lam * p["arms"][m]["cost"]

    def task(p: Mapping[str, Any]) -> dict[str, Any]:
        return {"input": p["prompt"], "task_type": p["source"]}

    held_tasks = [(task(p), p) for p in held]

    train_tasks = [(task(p), p) for p in train]

    def value(policy: Policy) -> Value:
        return Value(sum(reward(p, policy(t, models)) for t, p in held_tasks) / len(held_tasks))

    def value_in_sample(policy: Policy) -> Value:
        return Value(sum(reward(p, policy(t, models)) for t, p in train_tasks) / len(train_tasks))

    def stream(n: int) -> Iterator[dict[str, Any]]:
        rng = random.Random(f"quality:pareto:{seed}:decisions")
        for i, j in enumerate(_epochs(len(train), n, random.Random(f"quality:pareto:{seed}:order"))):
            p = train[j]
            m = rng.choice(models) if rng.random() >= share else logging_model
            yield _row("pareto", i, task(p), list(models), m, probs[m], round(reward(p, m), 9))

    singles = {m: sum(reward(p, m) for p in held) / len(held) for m in models}
    best = max(singles, key=singles.get)

    def best_by_source(prompts: list[dict[str, Any]]) -> dict[str, str]:
        """Per source, the model with the highest total reward over ``prompts`` (their exact means)."""
        by_source: dict[str, Counter[str]] = defaultdict(Counter)
        for p in prompts:
            for m in models:
                by_source[p["source"]][m] += reward(p, m)
        return {s: max(c, key=c.get) for s, c in by_source.items()}

    per_source, from_train = best_by_source(held), best_by_source(train)  # by the answer key; what train teaches
    return Workload(
        name="pareto", router_id="pareto", exact=True, stream=stream, value=value,
        value_in_sample=value_in_sample,
        logging_in_sample=Value(sum(sum(probs[m] * reward(p, m) for m in models) for p in train) / len(train)),
        logging=Value(sum(sum(probs[m] * reward(p, m) for m in models) for p in held) / len(held)),
        best_single=(best, Value(singles[best])),
        oracle=Value(sum(max(reward(p, m) for m in models) for p in held) / len(held)),
        meta={"source": f"PyPI {PB_SPEC} (Apache-2.0), pareto_bandit/data/examples/val.jsonl (train, "
                        f"{len(train)} prompts) and test_holdout.jsonl (held out, {len(held)} prompts)",
              "archive": wheel.name, "archive_sha256": _sha256(wheel),
              "reward": f"reward - {lam:g} * cost_usd", "models": models,
              "logging_policy": f"{share:.0%} {logging_model} + {1 - share:.0%} uniform over {len(models)}",
              "truth": "mean known reward of the chosen model over the held-out prompts (exact)",
              "oracle_is": "per-prompt best",
              "per_source_best_on_heldout": round(sum(reward(p, per_source[p["source"]]) for p in held) / len(held), 6),
              # the best model per source as the train prompts' exact means pick it, judged on the held-out ones
              "per_source_best_from_train": round(sum(reward(p, from_train.get(p["source"], best)) for p in held)
                                                  / len(held), 6),
              "route_values": {m: round(v, 6) for m, v in singles.items()},
              "sampling": "cycles through seeded permutations of the train prompts (repeats past 1,785)"},
    )


def sources_workload(seed: int, cache: Path, share: float = LOG_SHARE) -> Workload:
    """pareto's real prompts as a text classification bandit, run on request only (``--workloads sources``):
    one route per benchmark source (31), reward 1 for the prompt's own source. Untyped (the source is the
    answer), so only the text tells, and every route but the logging agent's is rarely taken. Logging:
    ``share`` to the most common source's route + the rest uniform; truth: exact accuracy on the held-out
    prompts. Added after every default was set, nothing tuned on it."""
    _, train, held = _pareto_prompts(cache)
    counts = Counter(p["source"] for p in train)
    routes = [f"src/{s}" for s in sorted({p["source"] for p in (*train, *held)})]  # a few sources are held out only
    default = f"src/{max(sorted(counts), key=counts.get)}"
    probs = _skewed_probs(routes, default, share)
    weights = [probs[r] for r in routes]
    held_tasks = [({"input": p["prompt"]}, f"src/{p['source']}") for p in held]

    def stream(n: int) -> Iterator[dict[str, Any]]:
        rng = random.Random(f"quality:sources:{seed}:decisions")
        for i, j in enumerate(_epochs(len(train), n, random.Random(f"quality:sources:{seed}:order"))):
            p = train[j]
            route = rng.choices(routes, weights=weights)[0]
            yield _row("sources", i, {"input": p["prompt"]}, list(routes), route, probs[route],
                       1.0 if route == f"src/{p['source']}" else 0.0)

    def value(policy: Policy) -> Value:
        return Value(sum(policy(t, list(routes)) == right for t, right in held_tasks) / len(held_tasks))

    shares = Counter(right for _, right in held_tasks)
    best = max(routes, key=lambda r: (shares[r], r == default))
    return Workload(
        name="sources", router_id="sources", exact=True, stream=stream, value=value,
        logging=Value(sum(probs[right] for _, right in held_tasks) / len(held_tasks)),
        best_single=(best, Value(shares[best] / len(held_tasks))), oracle=Value(1.0),
        meta={"source": f"PyPI {PB_SPEC} (Apache-2.0): the prompts of val.jsonl ({len(train)}, logged) and "
                        f"test_holdout.jsonl ({len(held)}, held out)",
              "truth": "exact accuracy of the chosen source over the held-out prompts",
              "logging_policy": f"{share:.0%} {default} + uniform over the {len(routes)} routes",
              "task": "input: the prompt; no task_type"},
    )


def _obd_rows(archive: Path, policy: str) -> list[dict[str, str]]:
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(f"obd/{policy}/all/all.csv"))
        fh = tar.extractfile(member)
        assert fh is not None
        return list(csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8")))


def _obd_task(r: Mapping[str, str], affinity_cols: Sequence[str]) -> dict[str, Any]:
    words = [f"uf{k}x{r[f'user_feature_{k}'][:12]}" for k in range(4)]
    words += [f"aff{c.rsplit('_', 1)[1]}" for c in affinity_cols if float(r[c]) != 0.0]
    return {"input": " ".join(words), "task_type": f"pos{r['position']}"}


def obd_workload(seed: int, cache: Path) -> Workload:
    sdist = fetch(OBP_SPEC, cache, sdist=True)
    bts, rnd = _obd_rows(sdist, "bts"), _obd_rows(sdist, "random")
    aff = [c for c in bts[0] if c.startswith("user-item_affinity_")]
    shown = Counter(int(r["item_id"]) for r in bts)
    items = sorted(sorted(shown, key=lambda i: (-shown[i], i))[:OBD_MAX_CANDIDATES])
    keep = set(items)
    candidates = [f"item-{i}" for i in items]
    p_random = 1.0 / len(items)

    def held_out(i: int) -> bool:
        return hashlib.sha256(f"quality:obd:{seed}:{i}".encode()).digest()[0] < 128

    rnd_train = [r for i, r in enumerate(rnd) if int(r["item_id"]) in keep and not held_out(i)]
    rnd_held = [r for i, r in enumerate(rnd) if int(r["item_id"]) in keep and held_out(i)]
    pool = [(r, float(r["propensity_score"])) for r in bts if int(r["item_id"]) in keep]
    pool += [(r, p_random) for r in rnd_train]
    held = [(_obd_task(r, aff), f"item-{r['item_id']}", float(r["click"])) for r in rnd_held]

    def ips(choices: Sequence[str]) -> Value:
        phi = np.fromiter((c / p_random if ch == item else 0.0 for (_, item, c), ch in zip(held, choices,
                                                                                      strict=True)), float)
        matched = [c for (_, item, c), ch in zip(held, choices, strict=True) if ch == item]
        k, m = int(sum(matched)), len(matched)
        # exact (Clopper-Pearson) 95% interval of the click rate on the matched rows: a normal interval
        # around an IPS estimate with no click in it has width zero, which claims a certainty there is not
        lo = float(beta.ppf(0.025, k, m - k + 1)) if k > 0 else 0.0
        hi = float(beta.ppf(0.975, k + 1, m - k)) if k < m else 1.0
        return Value(float(phi.mean()), None, {"ci95": [round(lo, 6), round(hi, 6)], "matched_rows": m,
                                                "matched_clicks": k})

    def value(policy: Policy) -> Value:
        return ips([policy(t, candidates) for t, _, _ in held])

    def stream(n: int) -> Iterator[dict[str, Any]]:
        for i, j in enumerate(_epochs(len(pool), n, random.Random(f"quality:obd:{seed}:order"))):
            r, p = pool[j]
            yield _row("obd", i, _obd_task(r, aff), candidates, f"item-{r['item_id']}", p, float(r["click"]))

    clicks = defaultdict(lambda: [0.0, 0])
    for r in rnd_train:
        c = clicks[f"item-{r['item_id']}"]
        c[0] += float(r["click"])
        c[1] += 1
    best = max(candidates, key=lambda c: (clicks[c][0] / max(1, clicks[c][1]), -candidates.index(c)))
    pool_clicks = np.fromiter((float(r["click"]) for r, _ in pool), float)
    log_iv = mean_interval(pool_clicks)
    held_iv = mean_interval(np.fromiter((c for _, _, c in held), float))
    bts_iv = mean_interval(np.fromiter((float(r["click"]) for r in bts if int(r["item_id"]) in keep), float))
    return Workload(
        name="obd", router_id="obd", exact=False, stream=stream, value=value,
        logging=Value(log_iv.value, log_iv.half_width),
        best_single=(best, value(lambda _t, _c: best)),
        oracle=None, digits=4,
        meta={"source": f"PyPI {OBP_SPEC} sdist (Open Bandit Dataset sample: CC BY 4.0), obd/bts/all/all.csv "
                        "and obd/random/all/all.csv",
              "archive": sdist.name, "archive_sha256": _sha256(sdist),
              "candidates": f"the {len(items)} items BTS shows most (of {len(shown)}); rows of others dropped",
              "bts_share_kept": round(len([1 for r in bts if int(r['item_id']) in keep]) / len(bts), 4),
              "pool": {"bts_rows": len(pool) - len(rnd_train), "random_train_rows": len(rnd_train)},
              "held_out_random_rows": len(held),
              "propensity": "BTS: logged (not renormalised to the 64 items); random: 1/64",
              "truth": "IPS estimate on the held-out random half (propensity 1/64), exact 95% CI of the matched "
                       "rows' click rate; not exact",
              "logging_is": "click rate of the training pool (BTS + random train half)",
              "ctr": {"bts": bts_iv.value, "random_heldout": held_iv.value, "pool": log_iv.value},
              "best_single_is": "best click rate on the random train half, IPS on the held-out half",
              "sampling": f"cycles through seeded permutations of the {len(pool)}-row pool (repeats past it)"},
    )


# -- learners ---------------------------------------------------------------------------------------


def _vw_word(w: str) -> str:
    return "".join(c for c in w.lower() if c.isalnum()) or "_"


def _vw_action(route: str) -> str:
    return "r_" + "".join(c if c.isalnum() else "_" for c in route)


class VW:
    """Vowpal Wabbit ``--cb_adf -q UA``: words of the input, the task type and the numeric features (raw
    values; VW's default normalised updates handle their scale) in U, the route in A."""

    def __init__(self) -> None:
        import vowpalwabbit

        self.ws = vowpalwabbit.Workspace("--cb_adf -q UA --quiet")

    @staticmethod
    def _shared(task: Mapping[str, Any]) -> str:
        words = " ".join(_vw_word(w) for w in str(task["input"]).split())
        nums = "".join(f" n_{_vw_word(k)}:{float(v)!r}" for k, v in (task.get("features") or {}).items())
        return f"shared |U {words} t_{_vw_word(str(task.get('task_type') or 'none'))}{nums}"

    def learn(self, row: Mapping[str, Any]) -> None:
        d, o = row["decision"], row["outcome"]
        lines = [self._shared(row["task"])]
        for c in row["candidates"]:
            label = f"0:{-float(o['reward'])}:{d['propensity']} " if c == d["route"] else ""
            lines.append(f"{label}|A {_vw_action(c)}")
        self.ws.learn(lines)

    def policy(self, task: Mapping[str, Any], candidates: Sequence[str]) -> str:
        costs = self.ws.predict([self._shared(task)] + [f"|A {_vw_action(c)}" for c in candidates])
        return candidates[min(range(len(candidates)), key=lambda k: (costs[k], k))]

    def finish(self) -> None:
        self.ws.finish()


class Counted:
    """A policy that counts its choices (what a learned policy actually does, for the JSON)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.counts: Counter[str] = Counter()
        self.typed: dict[str, Counter[str]] = defaultdict(Counter)

    def __call__(self, task: Mapping[str, Any], candidates: Sequence[str]) -> str:
        route = self.policy(task, candidates)
        self.counts[route] += 1
        self.typed[str(task.get("task_type"))][route] += 1
        return route

    def by_type(self, k: int = 3) -> dict[str, dict[str, float]]:
        out = {}
        for t, c in sorted(self.typed.items()):
            n = sum(c.values())
            out[t] = {r: round(m / n, 4) for r, m in c.most_common(k)}
        return out

    def top(self, k: int = 5) -> dict[str, float]:
        n = sum(self.counts.values()) or 1
        return {r: round(c / n, 4) for r, c in self.counts.most_common(k)}


def memabrad_policy(learner: RouterLearner, router: Router | None = None,
                    predicted: list[float] | None = None) -> Policy:
    """The challenger's (or ``router``'s: a portfolio member's) greedy choice, with the case-index hint,
    as the daemon serves it; ``predicted``, if given, gets the router's predicted reward of each choice
    (against the truth's value of the policy: is the router calibrated where it chooses?)."""
    r = router if router is not None else learner.challenger

    def policy(task: Mapping[str, Any], candidates: Sequence[str]) -> str:
        hint = learner.case_index.hint_of(TaskView.of(task)) if learner.use_case_index else None
        x, group = r.task_features(task, hint)
        best = r.best(x, candidates, group)
        if predicted is not None:
            predicted.append(r.predict_outcome(x, best, group).reward)
        return best

    return policy


def untyped(w: Workload) -> Workload:
    """``w`` with ``task.task_type`` removed from every logged trajectory and from every task a learned
    policy (memabrad's or VW's) is asked about; the truth still reads the whole task. Agents that do
    not label their tasks get no group part and no task-type feature: how much of a workload's value
    did the label carry?"""

    def strip(task: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in task.items() if k != "task_type"}

    def blind(truth: Callable[[Policy], Value]) -> Callable[[Policy], Value]:
        """``truth`` of a policy that is asked about the task without its type."""
        return lambda policy: truth(lambda task, cands: policy(strip(task), cands))

    def stream(n: int) -> Iterator[dict[str, Any]]:
        for row in w.stream(n):
            yield {**row, "task": strip(row["task"])}

    return replace(w, stream=stream, value=blind(w.value),
                   value_in_sample=blind(w.value_in_sample) if w.value_in_sample is not None else None,
                   meta={**w.meta, "untyped": "task_type removed from the log and from the policies' view"})


CYRILLIC = str.maketrans("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                         "абцдефгхийклмнопярстужвьызАБЦДЕФГХИЙКЛМНОПЯРСТУЖВЬЫЗ")


def cyrillic(w: Workload) -> Workload:
    """``w`` with every Latin letter of ``task.input`` written in a Cyrillic one (one letter for one, so the
    words, and what they tell, stay the same), in the log and in what a learned policy is asked about: does
    the router read a text that is not in ASCII as well as one that is?"""

    def script(task: Mapping[str, Any]) -> dict[str, Any]:
        return {**task, "input": str(task["input"]).translate(CYRILLIC)}

    def stream(n: int) -> Iterator[dict[str, Any]]:
        for row in w.stream(n):
            yield {**row, "task": script(row["task"])}

    def seen(truth: Callable[[Policy], Value]) -> Callable[[Policy], Value]:
        return lambda policy: truth(lambda task, cands: policy(script(task), cands))

    return replace(w, stream=stream, value=seen(w.value),
                   value_in_sample=seen(w.value_in_sample) if w.value_in_sample is not None else None,
                   meta={**w.meta, "script": "task.input's Latin letters written as Cyrillic ones"})


def rescaled(w: Workload, a: float, b: float) -> Workload:
    """``w`` with every logged reward r replaced by ``a * r + b`` (other units: cents, a shifted score); the
    truth stays in the original units, so values compare directly with ``w``'s. The gates' thresholds do
    not rescale (``promotion.min_reward_delta`` is in the reward's units): read the values, not the verdicts."""

    def stream(n: int) -> Iterator[dict[str, Any]]:
        for row in w.stream(n):
            yield {**row, "outcome": {**row["outcome"], "reward": a * float(row["outcome"]["reward"]) + b}}

    return replace(w, stream=stream, meta={**w.meta, "rewards_logged_as": f"{a:g} * reward + {b:g}"})


def late_route(w: Workload, route: str, k: int) -> Workload:
    """``w`` with ``route`` offered only from the ``k``-th logged trajectory on (a model the agent adds
    later): before, it is dropped from every candidate list and a trajectory the agent routed to it is
    left out. The logged propensities are kept (the logging agent's over the full list: an approximation
    for the evidence, not for what the router learns); the truth offers every route throughout."""

    def stream(n: int) -> Iterator[dict[str, Any]]:
        i = 0
        for row in w.stream(10 * n):
            if i >= n:
                return
            if i < k and route in row["candidates"]:
                if row["decision"]["route"] == route:
                    continue
                row = {**row, "candidates": [c for c in row["candidates"] if c != route]}
            i += 1
            yield row

    return replace(w, stream=stream, meta={**w.meta, "late_route": f"{route} offered from trajectory {k}"})


def gate(learner: RouterLearner, cfg: Config, settings: PolicySettings, pick: Selector
         ) -> tuple[dict[str, Any], LearnerSnapshot]:
    """The daemon's evaluation of the challenger put forward (``pick``: the portfolio's choice) against the
    logging policy (baseline None): progressive evidence over every trajectory so far, confidence sequences,
    the hold-out veto."""
    snap = learner.snapshot(pick)
    ev = evaluate(snap, None, settings, estimator=cfg.evaluation.estimator, confidence=cfg.evaluation.confidence)
    res, dec = ev.result, ev.decision
    d = res.deltas["reward"]
    diag = res.challenger_diagnostics
    return {
        "verdict": dec.verdict, "would_promote": dec.would_promote, "reasons": list(dec.reasons),
        "estimator": res.estimator, "task_count": res.task_count, "method": res.method,
        "looks": (res.sequential or {}).get("looks"),
        "baseline_reward": res.baseline.reward.value, "challenger_reward": res.challenger.reward.value,
        "delta_reward": d.value, "delta_ci": [d.ci_low, d.ci_high],
        "delta_latency_ms": res.deltas["latency_ms"].value,
        "effective_sample_size": diag.effective_sample_size, "max_weight": diag.max_weight,
        "match_rate": diag.match_rate,
        "member": snap.member, "portfolio": [m.to_dict() for m in snap.portfolio],
    }, snap


def run_workload(w: Workload, sizes: Sequence[int], with_vw: bool, config: str | None = None) -> dict[str, Any]:
    # the defaults; a --config file and MEMABRAD_<SECTION>__<KEY> variables override them for experiments
    # (say so when reporting)
    cfg = load_config(config, {k: v for k, v in os.environ.items() if k.startswith("MEMABRAD_")})
    learner = RouterLearner.new(w.router_id, cfg)
    vw = VW() if with_vw else None
    looks: dict[int, dict[str, Any]] = {}
    t0 = time.perf_counter()
    learn_s = vw_s = 0.0
    targets = set(sizes)
    settings = PolicySettings.from_config(cfg.promotion, cfg.evaluation)
    pick = selector(settings, cfg.evaluation.confidence)
    for i, row in enumerate(w.stream(max(sizes)), 1):
        t = time.perf_counter()
        learner.observe(parse_trajectory(json.dumps(row).encode()))
        if i not in targets and learner.counters.since_evaluation >= cfg.evaluation.min_new_trajectories:
            # the daemon's look between the reported ones (its gates judged, nothing promoted here)
            learner.drop_shadow(learner.snapshot(pick).sequence)
        learn_s += time.perf_counter() - t
        if vw is not None:
            t = time.perf_counter()
            vw.learn(row)
            vw_s += time.perf_counter() - t
        if i not in targets:
            continue
        t = time.perf_counter()
        predicted: dict[str, list[float]] = {m.name: [] for m in learner.members()} if learner.portfolio else {}
        members = {m.name: w.value(memabrad_policy(learner, m.frozen_router(), predicted[m.name])).value
                   for m in learner.members()} if learner.portfolio else {}
        g, snap = gate(learner, cfg, settings, pick)
        mem_pol = Counted(memabrad_policy(learner, snap.challenger))  # the challenger put forward
        mem = w.value(mem_pol)
        vw_pol = Counted(vw.policy) if vw is not None else None
        vwv = w.value(vw_pol) if vw_pol is not None else None
        true_deltas = {k: round(mem.extra[k] - w.logging.extra[k], 6) for k in ("error_rate", "latency_ms")
                       if k in mem.extra and k in w.logging.extra}
        in_sample = None
        if w.value_in_sample is not None and w.logging_in_sample is not None:
            v = w.value_in_sample(memabrad_policy(learner, snap.challenger)).value
            in_sample = {"memabrad": round(v, 6), "logging": round(w.logging_in_sample.value, 6),
                         "memabrad_minus_logging": round(v - w.logging_in_sample.value, 6)}
        looks[i] = {
            "n": i, "trained": learner.counters.trained, "window": len(learner.window),
            "memabrad": mem.to_dict(), "vw": vwv.to_dict() if vwv else None,
            "members_true_value": {k: round(v, 6) for k, v in members.items()},
            "members_predicted_value": {k: round(sum(v) / len(v), 6) for k, v in predicted.items() if v},
            "memabrad_minus_logging": round(mem.value - w.logging.value, 6), "gate": g,
            "memabrad_minus_logging_other": true_deltas, "in_sample": in_sample,
            "memabrad_choices_by_type": mem_pol.by_type(),
            "memabrad_choices": mem_pol.top(), "vw_choices": vw_pol.top() if vw_pol else None,
            "look_seconds": round(time.perf_counter() - t, 2),
        }
        print(f"  {w.name:9s} n={i:>6,}  memabrad {mem.value:.4f}  VW {vwv.value if vwv else float('nan'):.4f}  "
              f"gate {g['verdict']:12s} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    if vw is not None:
        vw.finish()
    return {
        "name": w.name, "exact_truth": w.exact, "meta": w.meta,
        "logging": w.logging.to_dict(), "best_single": {"route": w.best_single[0], **w.best_single[1].to_dict()},
        "oracle": w.oracle.to_dict() if w.oracle else None,
        "looks": [looks[n] for n in sorted(looks)],
        "seconds": {"total": round(time.perf_counter() - t0, 1), "memabrad_learn": round(learn_s, 1),
                    "vw_learn": round(vw_s, 1)},
    }


# -- report ------------------------------------------------------------------------------------------


def _fmt(v: Mapping[str, Any] | None, digits: int) -> str:
    if not v:
        return "n/a"
    s = f"{v['value']:.{digits}f}"
    if "ci95_half_width" in v:
        s += f" ± {v['ci95_half_width']:.{digits}f}"
    elif "ci95" in v:
        s += f" [{v['ci95'][0]:.{digits}f}, {v['ci95'][1]:.{digits}f}]"
    return s


def table(results: Sequence[Mapping[str, Any]]) -> str:
    """One row per workload and size. ``main``: the main challenger's true value (the learner the learning bar
    is about); ``memabrad``: the member the gates judged (put forward at that look), with its interval where
    the truth is an estimate."""
    head = ("| workload | n | logging | best single | oracle | VW cb_adf | main | memabrad | memabrad − logging "
            "| gate Δ estimate [95% CI] | gate verdict |")
    lines = [head, "|" + "---|" * 11]
    for w in results:
        d = 4 if w["name"] == "obd" else 3
        for look in w["looks"]:
            g = look["gate"]
            lo, hi = g["delta_ci"]
            diff = look["memabrad_minus_logging"]
            main = (look.get("members_true_value") or {}).get("main")
            lines.append(
                f"| {w['name']} | {look['n']:,} | {_fmt(w['logging'], d)} | {_fmt(w['best_single'], d)} "
                f"| {_fmt(w['oracle'], d)} | {_fmt(look['vw'], d)} | {'n/a' if main is None else f'{main:.{d}f}'} "
                f"| **{_fmt(look['memabrad'], d)}** "
                f"| {'~' if not w['exact_truth'] else ''}{diff:+.{d}f} "
                f"| {g['delta_reward']:+.{d}f} [{lo:+.{d}f}, {hi:+.{d}f}] | {g['verdict']} |")
    return "\n".join(lines)


def reasons(results: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for w in results:
        out.append(f"{w['name']}: best single = {w['best_single']['route']}"
                   + (f"; {w['meta'].get('oracle_is')}" if w["meta"].get("oracle_is") else ""))
        for look in w["looks"]:
            g = look["gate"]
            other = look.get("memabrad_minus_logging_other") or {}
            parts = [f"true Δ{k} {v:+.3f}" for k, v in other.items()]
            ins = look.get("in_sample")
            if ins:
                parts.append(f"true Δreward on the training prompts {ins['memabrad_minus_logging']:+.3f}")
            truth = ", ".join(parts)
            out.append(f"  n={look['n']:,} ({g['estimator']}, {g['task_count']} window tasks, ESS "
                       f"{g['effective_sample_size']:.0f}, max weight {g['max_weight']:.0f}, est. Δlatency "
                       f"{g['delta_latency_ms']:+.0f} ms" + (f"; {truth}" if truth else "") + "): "
                       + "; ".join(g["reasons"]))
    return "\n".join(out)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def default_cache_dir() -> Path:
    """Where fetched datasets are kept: ``MEMABRAD_BENCH_CACHE``, else ``memabrad-bench`` in the user's cache."""
    explicit = os.environ.get("MEMABRAD_BENCH_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "memabrad-bench"


def workload_builders(seed: int, cache: Path, n_sim: int = 20000, n_small: int = 5000, *, lam: float = PB_LAMBDA,
                      logging_model: str = PB_LOGGING_MODEL, share: float = LOG_SHARE
                      ) -> dict[str, Callable[[], Workload]]:
    """Every workload by name (the default run's and those run on request), built when called: ``n_sim`` fixed
    contexts for the simulator, ``n_small`` for the other simulated ones; ``lam``, ``logging_model`` and
    ``share``: pareto's reward price and logging agent."""
    return {
        "sim": lambda: sim_workload(seed, n_sim),
        "helpdesk": lambda: helpdesk_workload(seed, n_small),
        "hard": lambda: hard_workload(seed, n_small),
        "tokens": lambda: numeric_workload("tokens", seed, n_small),
        "priced": lambda: numeric_workload("priced", seed, n_small),
        "guarded": lambda: numeric_workload("guarded", seed, n_small),
        "drift": lambda: drift_workload(seed, n_small),
        "pareto": lambda: pareto_workload(seed, cache, lam=lam, logging_model=logging_model, share=share),
        "obd": lambda: obd_workload(seed, cache),
        "sources": lambda: sources_workload(seed, cache),
        **{name: (lambda name=name: classes_workload(name, seed))
           for name in (*CLASS_DATASETS, *PROBE_RIVER_CLASSES, *SYNTH_CLASSES)},
        "embed": lambda: embed_workload(seed, n_small),
        "tools": lambda: tools_workload(seed, n_small),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (300 / 1,000 / 2,000) and eval samples")
    ap.add_argument("--sizes", default=None, help="comma-separated looks, default 1000,5000,20000")
    ap.add_argument("--workloads", default="sim,helpdesk,hard,tokens,priced,guarded,drift,pareto,obd,digits,wine,"
                                                "cancer,embed,segment,phishing,bananas,yeast,tools")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", default=None, help="a config file for memabrad (default: built-in defaults)")
    ap.add_argument("--no-vw", action="store_true", help="skip Vowpal Wabbit")
    ap.add_argument("--cyrillic", action="store_true",
                    help="write task.input's Latin letters as Cyrillic ones (truth unchanged): texts not in ASCII")
    ap.add_argument("--untyped", action="store_true",
                    help="remove task.task_type from the log and from what memabrad and VW see (truth unchanged)")
    ap.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    ap.add_argument("--reward-affine", default=None, metavar="A,B",
                    help="log every reward r as A * r + B (truth unchanged): does the learner depend on the units?")
    ap.add_argument("--late-route", default=None, metavar="ROUTE,K",
                    help="offer ROUTE only from the K-th trajectory on (a model the agent adds later)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "quality-results.json"))
    ap.add_argument("--pareto-lambda", type=float, default=PB_LAMBDA, help="pareto: reward = score - LAMBDA * USD")
    ap.add_argument("--pareto-logging", default=PB_LOGGING_MODEL, help="pareto: the logging agent's default model")
    ap.add_argument("--pareto-share", type=float, default=LOG_SHARE,
                    help="pareto: share of traffic the logging agent sends to its default model (rest uniform)")
    args = ap.parse_args(argv)
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [300, 1000, 2000] if args.quick else [1000, 5000, 20000])
    n_sim, n_small = (3000, 1000) if args.quick else (20000, 5000)
    with_vw = not args.no_vw
    if with_vw:
        try:
            import vowpalwabbit  # noqa: F401
        except ImportError:
            print("vowpalwabbit is not installed (.venv/bin/pip install vowpalwabbit); running without VW",
                  file=sys.stderr)
            with_vw = False
    builders = workload_builders(args.seed, args.cache_dir, n_sim, n_small, lam=args.pareto_lambda,
                                 logging_model=args.pareto_logging, share=args.pareto_share)
    started = time.perf_counter()
    results, skipped = [], {}
    for name in [s.strip() for s in args.workloads.split(",") if s.strip()]:
        if name not in builders:
            ap.error(f"unknown workload {name!r} (choose from {', '.join(builders)})")
        t = time.perf_counter()
        try:
            w = builders[name]()
        except (OSError, RuntimeError, subprocess.SubprocessError, StopIteration, KeyError) as err:
            msg = getattr(err, "stderr", None) or err
            skipped[name] = f"could not load the data: {msg!s}"[:500]
            print(f"  {name}: skipped, {skipped[name]}", file=sys.stderr)
            continue
        print(f"  {name}: ground truth ready in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
        if args.late_route:
            route, k = args.late_route.rsplit(",", 1)
            w = late_route(w, route, int(k))
        if args.reward_affine:
            a, b = (float(v) for v in args.reward_affine.split(","))
            w = rescaled(w, a, b)
        w = cyrillic(w) if args.cyrillic else w
        results.append(run_workload(untyped(w) if args.untyped else w, sizes, with_vw, args.config))
    out = {
        "benchmark": "memabrad learning quality", "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "seed": args.seed, "sizes": sizes, "quick": args.quick, "untyped": args.untyped, "cyrillic": args.cyrillic,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "vowpalwabbit": _version("vowpalwabbit") if with_vw else None},
        "memabrad_config": f"config file {args.config}" if args.config else "defaults (Config())",
        "vw_args": "--cb_adf -q UA (U: input words + task type, A: route id; cost = -reward)" if with_vw else None,
        "workloads": results, "skipped": skipped,
        "seconds": round(time.perf_counter() - started, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=float) + "\n", encoding="utf-8")
    print(table(results))
    print()
    print(reasons(results))
    for name, why in skipped.items():
        print(f"{name}: skipped ({why})")
    print(f"\n{sum(len(w['looks']) for w in results)} looks in {out['seconds']:.0f} s; JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
