"""``bench/ridge_probe.py``: exact per-route ridge fits on the router's features route by what the log shows."""

from __future__ import annotations

import json
from pathlib import Path

from bench_modules import bench_module

from memabrad.learning.router import Router


def test_a_fit_per_route_routes_each_task_to_the_route_its_log_rewards() -> None:
    router = Router()
    a, b = {"input": "weather in paris tomorrow"}, {"input": "translate cat to french"}
    xa, xb = router.task_features(a, None)[0], router.task_features(b, None)[0]
    by_route = {"tool/weather": ([xa] * 20 + [xb] * 20, [1.0] * 20 + [0.0] * 20),
                "tool/translate": ([xa] * 20 + [xb] * 20, [0.0] * 20 + [0.8] * 20)}
    with bench_module("ridge_probe.py") as rp:
        for penalty in (1.0, "loo"):
            models, chosen = rp._fits(by_route, penalty)
            policy = rp._ridge_policy(router, models)
            assert policy(a, ["tool/translate", "tool/weather"]) == "tool/weather"
            assert policy(b, ["tool/weather", "tool/translate"]) == "tool/translate"
            assert set(chosen) == (set(by_route) if penalty == "loo" else set())
            assert all(v in rp.LOO_GRID for v in chosen.values())


def test_one_run_reports_every_policy_beside_the_router(tmp_path: Path) -> None:
    out = tmp_path / "ridge.json"
    with bench_module("ridge_probe.py") as rp:
        assert rp.main(["--workloads", "wine", "--n", "600", "--no-vw", "--out", str(out)]) == 0
    (r,) = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert r["workload"] == "wine" and r["seed"] == 1 and r["vw"] is None
    for k in ("online", "ridge_0.1", "ridge_1", "ridge_10", "ridge_loo"):
        assert 0.0 <= r[k] <= 1.0
    assert r["ridge_1"] > r["logging"]  # three classes told apart by their numbers: a fit beats the logging agent
