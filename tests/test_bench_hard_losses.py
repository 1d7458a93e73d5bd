"""The hard workload's loss table adds up: what each (family, level) gives away is the value's gap to the best."""

from __future__ import annotations

from bench_modules import bench_module

from memabrad.sim import hard


def test_the_losses_add_up_to_the_gap_from_the_per_context_best() -> None:
    with bench_module("hard_losses.py") as mod:
        res = mod.losses(seed=1, n=400, n_test=300)
    test = hard.HardWorkload(seed=12345).generate(300)
    best = sum(max(hard.expected_reward(c.family, c.level, r) for r in hard.ROUTES)
               for c in (hard.context_of_task(row["task"]) for row in test)) / len(test)
    lost = sum(v["lost"] for v in res["by_context"].values())
    assert abs(best - res["value"] - lost) < 0.001 * len(res["by_context"])  # each loss is rounded to 4 places
    assert all(v["lost"] >= 0 and 0 < sum(v["choices"].values()) <= 1.001 for v in res["by_context"].values())
