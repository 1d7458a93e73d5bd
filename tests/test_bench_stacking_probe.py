"""The stacking probe ranks held-out tasks as the product's router does and scores them by the exact truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bench_modules import bench_module

from memabrad.learning.router import Router
from memabrad.sim.helpdesk import EXPECTED_REWARD, HelpdeskWorkload


@pytest.fixture(scope="module")
def probe():  # noqa: ANN201 - the benchmark module
    with bench_module("stacking_probe.py") as mod:
        yield mod


def test_the_probe_scores_every_variant_by_the_truth(probe, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "probe.json"
    assert probe.main(["--seeds", "1", "--sizes", "300,800", "--test", "200", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    lo = min(min(v.values()) for v in EXPECTED_REWARD.values())
    hi = max(max(v.values()) for v in EXPECTED_REWARD.values())
    for row in result["mean"]:
        assert set(row) == {"n", *probe.VARIANTS}
        assert all(lo <= row[v] <= hi for v in probe.VARIANTS)
    look = result["runs"]["1"][-1]
    assert look["n"] == 800 and set(look["routes"]) <= set(EXPECTED_REWARD["account"])


def test_the_probes_per_route_ranking_is_the_routers(probe) -> None:  # noqa: ANN001
    r = Router()
    for row in HelpdeskWorkload(seed=4).generate(700):
        x, g = r.task_features({"input": row["task"]["input"]})
        d, o = row["decision"], row["outcome"]
        r.learn(x, d["route"], propensity=d["propensity"], reward=o["reward"], error=o["error"],
                latency_ms=o["latency_ms"], group=g)
    test = HelpdeskWorkload(seed=5).generate(60)
    p = probe.parts(r, test, typed=False)
    picked = probe.scores(r, p, "product", r.pessimism).argmax(axis=1)
    for t, j in zip(test, picked, strict=True):
        x, g = r.task_features({"input": t["task"]["input"]})
        assert p.routes[j] == r.best(x, p.routes, g)


def test_split_weights_follow_the_sums_and_fall_back_to_the_product(probe) -> None:  # noqa: ANN001
    split = probe.SplitSums()
    assert split.weights("llm/nano", "code", 0.4, per_type=True) == (0.4, 0.4)  # no evidence: the product's
    # 400 events where the target is exactly 0.9 * shared part and the own part is noise
    rng = np.random.default_rng(3)
    o, s = rng.normal(0, 0.1, 400), rng.normal(0, 0.3, 400)
    t = 0.9 * s
    v = np.array([o @ o, o @ s, s @ s, o @ t, s @ t])
    split.route["r"] += v
    split.group[("r", "g")] += v
    split.events["r"] = 400
    a, b = split.weights("r", "g", 0.4, per_type=True)
    assert abs(b - 0.9) < 0.1 and a < 0.4  # the shared part's weight found, the noise's shrunk
    assert split.weights("r", "other", 0.4, per_type=True) == split.weights("r", None, 0.4, per_type=False)


def test_the_simulator_is_probed_over_the_routes_each_task_offered(probe, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "sim.json"
    assert probe.main(["--workload", "sim", "--typed", "--seeds", "1", "--sizes", "400", "--test", "150",
                       "--out", str(out)]) == 0
    values = json.loads(out.read_text())["runs"]["1"][0]["values"]
    assert set(values) == set(probe.VARIANTS)
    assert all(-1.0 <= v <= 1.0 for v in values.values())  # never a route the task was not offered (-inf)
