"""Tests of the hard workload (memabrad/sim/hard.py): determinism, contract, propensities, truth."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict

import pytest

from memabrad.sim.hard import (
    ACCURACY,
    DELIMITER,
    EXPLORE,
    FAMILIES,
    LAMBDA,
    LOGGING_ROUTE,
    MIX,
    PRICE_USD,
    ROUTES,
    HardContext,
    HardWorkload,
    context_of_task,
    expected_reward,
    opening,
)
from memabrad.wire.parse import parse_trajectory

N = 6000


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return HardWorkload(seed=7).generate(N)


def test_same_seed_same_rows_and_other_seed_differs(rows: list[dict]) -> None:
    again = HardWorkload(seed=7).generate(200)
    assert again == rows[:200]
    w = HardWorkload(seed=7)
    w.generate(50)
    w.reset()
    assert w.generate(200) == rows[:200]
    other = HardWorkload(seed=8).generate(200)
    assert [r["task"]["input"] for r in other] != [r["task"]["input"] for r in rows[:200]]


def test_rows_are_contract_valid(rows: list[dict]) -> None:
    ids = set()
    for row in rows[:1500]:
        t = parse_trajectory(json.dumps(row).encode())
        assert t.decision.route in t.candidates
        assert t.candidates == list(ROUTES)
        ids.add(t.trajectory_id)
    assert len(ids) == 1500


def test_propensities_are_exact(rows: list[dict]) -> None:
    k = len(ROUTES)
    for row in rows:
        d = row["decision"]
        want = EXPLORE / k + (1.0 - EXPLORE if d["route"] == LOGGING_ROUTE else 0.0)
        assert d["propensity"] == pytest.approx(want, abs=1e-15)
    assert HardWorkload().logging_probabilities(list(ROUTES))[LOGGING_ROUTE] == pytest.approx(0.725)
    # the logged route frequencies follow the stated propensities
    counts = Counter(r["decision"]["route"] for r in rows)
    p = 1.0 - EXPLORE + EXPLORE / k
    assert abs(counts[LOGGING_ROUTE] / N - p) < 4 * math.sqrt(p * (1 - p) / N)
    for route in ROUTES:
        q = EXPLORE / k if route != LOGGING_ROUTE else p
        assert abs(counts[route] / N - q) < 5 * math.sqrt(q * (1 - q) / N) + 1e-9


def test_inputs_share_a_long_family_opening_and_reveal_their_context(rows: list[dict]) -> None:
    for fam in FAMILIES:
        assert len(opening(fam).split()) >= 250
    seen: Counter[HardContext] = Counter()
    for row in rows[:2000]:
        task = row["task"]
        head, _, end = task["input"].rpartition(DELIMITER + "\n")
        assert head + DELIMITER + "\n" == opening(task["task_type"])
        assert 5 <= len(end.split()) <= 40
        seen[context_of_task(task)] += 1
    assert set(seen) == set(MIX)


def test_logged_mean_matches_exact_value_of_logging(rows: list[dict]) -> None:
    w = HardWorkload(seed=7)
    truth = w.true_value_of_logging(N, seed=7).reward  # exactly the logged contexts
    rewards = [r["outcome"]["reward"] for r in rows]
    mean = sum(rewards) / N
    sd = math.sqrt(sum((x - mean) ** 2 for x in rewards) / (N - 1))
    assert abs(mean - truth) < 4 * sd / math.sqrt(N)


def test_empirical_means_match_expected_reward_per_context_and_route(rows: list[dict]) -> None:
    cells: dict[tuple[HardContext, str], list[float]] = defaultdict(list)
    for row in rows:
        cells[(context_of_task(row["task"]), row["decision"]["route"])].append(row["outcome"]["reward"])
    checked = 0
    for (ctx, route), xs in cells.items():
        if len(xs) < 200:
            continue
        want = expected_reward(ctx.family, ctx.level, route)
        acc = ACCURACY[ctx][ROUTES.index(route)]
        se = math.sqrt(max(acc * (1 - acc), 1e-4) / len(xs))
        assert abs(sum(xs) / len(xs) - want) < 4.5 * se, (ctx, route)
        checked += 1
    assert checked >= len(MIX)  # at least the logging route in every (family, level)


def test_true_values_are_consistent() -> None:
    w = HardWorkload(seed=0)
    oracle = w.true_value(w.oracle_policy(), n_contexts=3000)
    logging = w.true_value_of_logging(3000, seed=12345)
    best = w.best_single_route()
    single = w.true_value(lambda _t, _c: best, n_contexts=3000)
    assert oracle.reward > single.reward > logging.reward
    # a constant policy's sample value is close to its exact population value
    assert single.reward == pytest.approx(w.population_value(dict.fromkeys(MIX, best)), abs=0.03)
    assert w.population_value(w.oracle_choice()) >= max(w.population_value(dict.fromkeys(MIX, r)) for r in ROUTES)
    # near-chance families: no route beats the cheapest few by more than a point of reward
    for key in (("forecast", "-"), ("puzzle", "-")):
        vals = [expected_reward(*key, r) for r in ROUTES]
        assert max(vals) - vals[0] < 0.01
        assert max(ACCURACY[key]) < 0.55
    assert expected_reward("code", "easy", "llm/max") == pytest.approx(0.90 - LAMBDA * PRICE_USD["llm/max"])


def test_foreign_task_is_refused() -> None:
    with pytest.raises(ValueError):
        context_of_task({"input": "hello", "task_type": "code"})
