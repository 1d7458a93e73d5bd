"""The stacking probe ranks held-out tasks as the product's router does and scores them by the exact truth."""

from __future__ import annotations

import json
from pathlib import Path

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
