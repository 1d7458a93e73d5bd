"""``bench/ridge_probe.py``: exact per-route ridge fits on the router's features route by what the log shows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from bench_modules import bench_module

from memabrad.learning.router import Router


def test_a_fit_per_route_routes_each_task_to_the_route_its_log_rewards() -> None:
    router = Router()
    a, b = {"input": "weather in paris tomorrow"}, {"input": "translate cat to french"}
    xa, xb = router.task_features(a, None)[0], router.task_features(b, None)[0]
    logged = {"tool/weather": ([xa] * 20 + [xb] * 20, [1.0] * 20 + [0.0] * 20),
                "tool/translate": ([xa] * 20 + [xb] * 20, [0.0] * 20 + [0.8] * 20)}
    with bench_module("ridge_probe.py") as rp:
        by_route = rp.route_data(logged)
        for penalty in (1.0, "loo"):
            models, chosen = rp._fits(by_route, penalty)
            policy = rp._ridge_policy(router, models)
            assert policy(a, ["tool/translate", "tool/weather"]) == "tool/weather"
            assert policy(b, ["tool/weather", "tool/translate"]) == "tool/translate"
            assert set(chosen) == (set(logged) if penalty == "loo" else set())
            assert all(v in rp.LOO_GRID for v in chosen.values())


def test_the_pooled_penalty_is_the_one_whose_leave_one_out_error_is_lowest() -> None:
    rng = np.random.default_rng(5)
    router = Router()
    words = [f"w{i}" for i in range(40)]
    # a reward that is a fixed function of one word: the weakest penalty fits it best
    logged = {}
    for route in ("a", "b"):
        xs, ys = [], []
        for _ in range(200):
            text = " ".join(rng.choice(words, 4))
            xs.append(router.task_features({"input": text}, None)[0])
            ys.append(1.0 if ("w1" in text.split()) == (route == "a") else 0.0)
        logged[route] = (xs, ys)
    with bench_module("ridge_probe.py") as rp:
        chosen, means = rp.pooled_penalty(rp.route_data(logged))
    assert chosen == min(means, key=means.get) and set(means) == set(rp.PENALTIES)
    assert chosen < max(rp.PENALTIES)


def test_one_run_reports_every_policy_beside_the_router(tmp_path: Path) -> None:
    out = tmp_path / "ridge.json"
    with bench_module("ridge_probe.py") as rp:
        assert rp.main(["--workloads", "wine", "--n", "600", "--no-vw", "--out", str(out)]) == 0
    (r,) = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert r["workload"] == "wine" and r["seed"] == 1 and r["vw"] is None
    for k in ("online", "ridge_0.1", "ridge_1", "ridge_10", "ridge_loo", "ridge_pooled"):
        assert 0.0 <= r[k] <= 1.0
    assert r["ridge_pooled"] == r[f"ridge_{r['pooled_penalty']:g}"]
    assert r["pooled_loo_error"][f"{r['pooled_penalty']:g}"] == min(r["pooled_loo_error"].values())
    assert r["ridge_1"] > r["logging"]  # three classes told apart by their numbers: a fit beats the logging agent
