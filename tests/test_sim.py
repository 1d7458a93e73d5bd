"""Tests of the workload simulator: determinism, contract validity and calibrated true values."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from memabrad.sim import (
    DEFAULT_ROUTES,
    EpsilonGreedyLogger,
    Simulator,
    World,
    default_world,
    expected_outcome_for_task,
    fixed_policy,
    oracle_policy,
    true_value,
    true_value_of_logging,
    true_value_on,
    type_only_policy,
    write_jsonl,
)
from memabrad.sim.world import normalized_key

ROOT = Path(__file__).resolve().parents[1]
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ROUTER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ROUTE = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")


def contract_violations(t: dict[str, Any]) -> list[str]:
    """Check a trajectory against CONTRACT.md §2 by hand (independent of memabrad.wire)."""
    bad: list[str] = []
    if t.get("schema_version") != 1:
        bad.append("schema_version")
    if not isinstance(t.get("trajectory_id"), str) or not _ID.match(t["trajectory_id"]):
        bad.append("trajectory_id")
    if not isinstance(t.get("router_id", "default"), str) or not _ROUTER.match(t.get("router_id", "default")):
        bad.append("router_id")
    try:
        ts = datetime.fromisoformat(t["occurred_at"])
        if ts.tzinfo is None:
            bad.append("occurred_at zone")
    except (KeyError, TypeError, ValueError):
        bad.append("occurred_at")
    task = t.get("task")
    if not isinstance(task, dict):
        return [*bad, "task"]
    if not isinstance(task.get("input"), str) or not 1 <= len(task["input"]) <= 16384:
        bad.append("task.input")
    if "task_type" in task and (not isinstance(task["task_type"], str) or len(task["task_type"]) > 64):
        bad.append("task.task_type")
    feats = task.get("features", {})
    if not isinstance(feats, dict) or len(feats) > 256:
        bad.append("task.features")
    else:
        for k, v in feats.items():
            if not isinstance(k, str) or len(k) > 64:
                bad.append("features key")
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                bad.append(f"features[{k}]")
    tags = task.get("tags", [])
    if not isinstance(tags, list) or len(tags) > 32 or not all(isinstance(x, str) for x in tags):
        bad.append("task.tags")
    cands = t.get("candidates")
    if (
        not isinstance(cands, list)
        or not 1 <= len(cands) <= 64
        or len(set(cands)) != len(cands)
        or not all(isinstance(c, str) and _ROUTE.match(c) for c in cands)
    ):
        return [*bad, "candidates"]
    decision = t.get("decision", {})
    if decision.get("route") not in cands:
        bad.append("decision.route")
    p = decision.get("propensity")
    if p is not None and not (isinstance(p, float | int) and 0 < p <= 1):
        bad.append("decision.propensity")
    outcome = t.get("outcome", {})
    r = outcome.get("reward")
    if isinstance(r, bool) or not isinstance(r, int | float) or not math.isfinite(r):
        bad.append("outcome.reward")
    if not isinstance(outcome.get("error"), bool):
        bad.append("outcome.error")
    lat = outcome.get("latency_ms")
    if isinstance(lat, bool) or not isinstance(lat, int | float) or not math.isfinite(lat) or lat < 0:
        bad.append("outcome.latency_ms")
    steps = t.get("steps", [])
    if not isinstance(steps, list) or len(steps) > 256 or not all(isinstance(s, dict) for s in steps):
        bad.append("steps")
    return bad


@pytest.fixture(scope="module")
def logged() -> list[dict[str, Any]]:
    return Simulator(seed=7).generate(20000)


def _digest(trajectories: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(trajectories, sort_keys=True).encode()).hexdigest()


# -- determinism --------------------------------------------------------------------------------


def test_same_seed_same_output_and_different_seeds_differ() -> None:
    a = Simulator(seed=3).generate(2000)
    assert a == Simulator(seed=3).generate(2000)
    b = Simulator(seed=4).generate(2000)
    assert [t["task"] for t in a] != [t["task"] for t in b]
    assert [t["outcome"] for t in a] != [t["outcome"] for t in b]
    assert Simulator(seed=3).generate_suite(300) == Simulator(seed=3).generate_suite(300)
    assert Simulator(seed=3).generate_suite(300) != Simulator(seed=4).generate_suite(300)


def test_same_seed_same_output_across_processes() -> None:
    """Guards against salted ``hash()`` sneaking in: another process, another hash seed."""
    code = (
        "import hashlib, json\n"
        "from memabrad.sim import Simulator\n"
        "t = Simulator(seed=11).generate(500)\n"
        "print(hashlib.sha256(json.dumps(t, sort_keys=True).encode()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "987", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _digest(Simulator(seed=11).generate(500))


def test_stream_continues_across_calls_and_reset_rewinds() -> None:
    whole = Simulator(seed=5).generate(300)
    sim = Simulator(seed=5)
    parts = sim.generate(100) + list(sim.iter_generate(120)) + sim.generate(80)
    assert parts == whole
    sim.reset()
    assert sim.generate(50) == whole[:50]


def test_epsilon_does_not_change_contexts() -> None:
    a = Simulator(seed=2, epsilon=0.3).generate(500)
    b = Simulator(seed=2, epsilon=0.0).generate(500)
    assert [(t["task"], t["candidates"]) for t in a] == [(t["task"], t["candidates"]) for t in b]
    assert all(t["decision"]["route"] == fixed_policy(t["task"], t["candidates"]) for t in b)


# -- contract shape ------------------------------------------------------------------------------


def test_every_trajectory_is_contract_valid(logged: list[dict[str, Any]]) -> None:
    problems = {t["trajectory_id"]: contract_violations(t) for t in logged}
    assert {k: v for k, v in problems.items() if v} == {}
    ids = [t["trajectory_id"] for t in logged]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "default-s7-00000000"
    times = [datetime.fromisoformat(t["occurred_at"]) for t in logged]
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    assert all(t["occurred_at"].endswith("Z") for t in logged)
    assert all(t["decision"]["router_version"] == "logging" and t["steps"] == [] for t in logged)
    assert all(0.0 <= t["outcome"]["reward"] <= 1.0 for t in logged)


def test_candidates_mostly_full_sometimes_subsets(logged: list[dict[str, Any]]) -> None:
    sizes = Counter(len(t["candidates"]) for t in logged)
    full = sizes[len(DEFAULT_ROUTES)] / len(logged)
    assert 0.7 < full < 0.9
    assert set(sizes) <= {3, 4, 5, 6} and all(sizes[k] > 0 for k in (3, 4, 5))
    for t in logged:
        order = [DEFAULT_ROUTES.index(c) for c in t["candidates"]]
        assert order == sorted(order)


def test_propensities_are_exact(logged: list[dict[str, Any]]) -> None:
    for t in logged:
        cands, route = t["candidates"], t["decision"]["route"]
        base = fixed_policy(t["task"], cands)
        expected = 0.3 / len(cands) + (0.7 if route == base else 0.0)
        assert t["decision"]["propensity"] == pytest.approx(expected, abs=1e-12)
    explored = sum(t["decision"]["route"] != fixed_policy(t["task"], t["candidates"]) for t in logged)
    # P(explore and pick a non-base route) is about 0.3 * (1 - 1/K).
    assert 0.2 < explored / len(logged) < 0.3


def test_epsilon_greedy_logger_probabilities() -> None:
    logger = EpsilonGreedyLogger(fixed_policy, 0.2, random.Random(0))
    task = {"input": "Find the latest news on solar panels.", "task_type": "research"}
    cands = ["direct", "memory.semantic", "tool.web_search", "clarify"]
    probs = logger.probabilities(task, cands)
    assert sum(probs.values()) == pytest.approx(1.0)
    assert probs["memory.semantic"] == pytest.approx(0.05 + 0.8)
    counts = Counter(logger(task, cands)[0] for _ in range(20000))
    assert counts["memory.semantic"] / 20000 == pytest.approx(0.85, abs=0.015)
    route, p = logger(task, cands)
    assert p == pytest.approx(probs[route])
    with pytest.raises(ValueError):
        EpsilonGreedyLogger(fixed_policy, 1.5, random.Random(0))


def test_custom_routes_and_router_id() -> None:
    sim = Simulator(seed=1, routes=("direct", "tool.code", "x.custom"), router_id="r-2", epsilon=0.5)
    out = sim.generate(200)
    assert all(not contract_violations(t) for t in out)
    assert all(t["candidates"] == ["direct", "tool.code", "x.custom"] for t in out)
    assert out[0]["trajectory_id"] == "r-2-s1-00000000" and out[0]["router_id"] == "r-2"
    assert {t["decision"]["route"] for t in out} == {"direct", "tool.code", "x.custom"}


def test_start_time_is_respected() -> None:
    start = datetime.fromisoformat("2026-11-25T17:00:00+00:00")
    first = Simulator(seed=0, start_time=start).generate(1)[0]
    assert first["occurred_at"].startswith("2026-11-25T17:00:")


def test_write_jsonl_round_trips(tmp_path: Path) -> None:
    trajectories = Simulator(seed=9).generate(50)
    path = tmp_path / "t.jsonl"
    assert write_jsonl(path, trajectories) == 50
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50 and ", " not in lines[0]
    assert [json.loads(line) for line in lines] == trajectories


# -- world and suite -----------------------------------------------------------------------------


def test_suite_has_outcomes_for_every_candidate() -> None:
    suite = Simulator(seed=1).generate_suite(1000)
    assert len(suite) == 1000
    for entry in suite:
        assert set(entry) == {"task", "candidates", "outcomes"}
        assert set(entry["outcomes"]) == set(entry["candidates"])
        for o in entry["outcomes"].values():
            assert 0.0 <= o["reward"] <= 1.0 and isinstance(o["error"], bool) and o["latency_ms"] >= 0
    assert any(len(e["candidates"]) < len(DEFAULT_ROUTES) for e in suite)


def test_expected_outcomes_are_in_calibrated_ranges(logged: list[dict[str, Any]]) -> None:
    per_route_error: dict[str, list[float]] = {r: [] for r in DEFAULT_ROUTES}
    per_route_latency: dict[str, list[float]] = {r: [] for r in DEFAULT_ROUTES}
    for t in logged[:3000]:
        for r in DEFAULT_ROUTES:
            o = expected_outcome_for_task(t["task"], r)
            assert 0.0 <= o.reward <= 1.0
            assert 0.02 <= o.error_rate <= 0.15
            assert 100.0 <= o.latency_ms <= 3000.0
            per_route_error[r].append(o.error_rate)
            per_route_latency[r].append(o.latency_ms)
    mean = {r: sum(v) / len(v) for r, v in per_route_latency.items()}
    assert min(mean["tool.web_search"], mean["tool.code"]) > max(mean["direct"], mean["clarify"])
    assert all(0.02 <= sum(v) / len(v) <= 0.15 for v in per_route_error.values())


def test_sampled_outcomes_are_unbiased() -> None:
    world = default_world()
    task = {"input": "Compare current prices of e-bikes.", "task_type": "research", "features": {"history_sessions": 3}}
    ctx = world.context_of_task(task)
    rng = random.Random(42)
    for route in ("tool.web_search", "direct"):
        exp = world.expected_outcome(ctx, route)
        draws = [world.sample_outcome(ctx, route, rng) for _ in range(40000)]
        assert sum(d[0] for d in draws) / len(draws) == pytest.approx(exp.reward, abs=0.01)
        assert sum(d[1] for d in draws) / len(draws) == pytest.approx(exp.error_rate, abs=0.005)
        assert sum(d[2] for d in draws) / len(draws) == pytest.approx(exp.latency_ms, rel=0.01)
        assert all(d[0] == 0.0 for d in draws if d[1])


def test_words_change_the_best_route_within_a_type() -> None:
    oracle = oracle_policy(World(0, quirk_probability=0.0))

    def best(text: str, task_type: str, history: int = 10) -> str:
        task = {"input": text, "task_type": task_type, "features": {"history_sessions": history}}
        return oracle(task, list(DEFAULT_ROUTES))

    assert best("Give me three key points about photosynthesis.", "qa") == "direct"
    assert best("Give me three key points about photosynthesis. What is the latest on this?", "qa") == (
        "tool.web_search"
    )
    assert (
        best("Give me three key points about photosynthesis. You told me something about it yesterday.", "qa")
        == "memory.episodic"
    )
    assert best("Give me three key points about the expense policy. According to the handbook.", "qa") == (
        "memory.semantic"
    )
    assert (
        best("Fix this Python function that leaks memory.\n```\nd = {}\nprint(d['missing'])\n```", "coding")
        == "tool.code"
    )
    assert best("fix it", "ambiguous") == "clarify"
    assert best("Remind me what we decided last time about the budget.", "recall", history=10) == ("memory.episodic")
    assert best("Remind me what we decided last time about the budget.", "recall", history=0) != ("memory.episodic")


def test_per_text_quirks_reward_remembering_texts(logged: list[dict[str, Any]]) -> None:
    """Some texts have a hidden best route that their words do not reveal."""
    plain = oracle_policy(World(0, quirk_probability=0.0))
    oracle = oracle_policy()
    full = list(DEFAULT_ROUTES)
    differ = {t["task"]["input"] for t in logged if plain(t["task"], full) != oracle(t["task"], full)}
    share = sum(t["task"]["input"] in differ for t in logged) / len(logged)
    assert 0.1 < share < 0.4
    assert true_value(oracle).reward > true_value(plain).reward + 0.015


def test_tasks_repeat_so_a_case_index_helps(logged: list[dict[str, Any]]) -> None:
    texts = Counter(t["task"]["input"] for t in logged)
    repeated = sum(c for c in texts.values() if c > 1)
    assert repeated / len(logged) > 0.4
    assert texts.most_common(1)[0][1] > 100
    keys = Counter(normalized_key(t["task"]["input"]) for t in logged)
    assert len(keys) < len(texts)  # near-duplicates share a key


def test_expected_outcome_for_task_is_consistent(logged: list[dict[str, Any]]) -> None:
    world = default_world()
    for t in logged[:200]:
        route = t["decision"]["route"]
        ctx = world.context(t["task"]["input"], t["task"]["task_type"], t["task"]["features"]["history_sessions"])
        assert expected_outcome_for_task(t["task"], route) == world.expected_outcome(ctx, route)
        assert t["task"]["features"]["tokens"] == ctx.tokens
        assert t["task"]["features"]["has_code"] == int(ctx.has_code)


# -- true values ---------------------------------------------------------------------------------


def test_true_values_are_ordered_and_calibrated() -> None:
    fixed = true_value(fixed_policy)
    type_only = true_value(type_only_policy())
    oracle = true_value(oracle_policy())
    logging_value = true_value_of_logging(Simulator(seed=12345))
    assert oracle.reward > type_only.reward > fixed.reward > logging_value.reward
    assert 0.45 <= logging_value.reward <= 0.55
    assert 0.15 <= oracle.reward - logging_value.reward <= 0.3
    assert type_only.reward - fixed.reward > 0.05 and oracle.reward - type_only.reward > 0.04
    for v in (fixed, type_only, oracle, logging_value):
        assert 0.02 <= v.error_rate <= 0.15 and 100 <= v.latency_ms <= 3000
    assert true_value(fixed_policy) == fixed  # exact, no sampling


def test_logging_mean_observed_reward_matches_true_value(logged: list[dict[str, Any]]) -> None:
    truth = true_value_of_logging(Simulator(seed=7), n_contexts=len(logged))
    n = len(logged)
    assert sum(t["outcome"]["reward"] for t in logged) / n == pytest.approx(truth.reward, abs=0.01)
    assert sum(t["outcome"]["error"] for t in logged) / n == pytest.approx(truth.error_rate, abs=0.006)
    assert sum(t["outcome"]["latency_ms"] for t in logged) / n == pytest.approx(truth.latency_ms, rel=0.02)


def test_true_value_on_logged_contexts(logged: list[dict[str, Any]]) -> None:
    on_logged = true_value_on(fixed_policy, logged)
    assert on_logged.reward == pytest.approx(true_value(fixed_policy).reward, abs=0.015)
    assert true_value_on(oracle_policy(), logged).reward > on_logged.reward + 0.1
    with pytest.raises(ValueError):
        true_value_on(fixed_policy, [])


def test_generating_100k_is_fast() -> None:
    start = time.perf_counter()
    n = sum(1 for _ in Simulator(seed=0).iter_generate(100_000))
    assert n == 100_000
    assert time.perf_counter() - start < 10.0
