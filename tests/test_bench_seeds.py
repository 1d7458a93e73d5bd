"""``bench/seeds.py``: the learning bar counted over seeds from the quality benchmark's JSON."""

from __future__ import annotations

import json
from pathlib import Path

from bench_modules import bench_module


def _result(seed: int, main: float, vw: float | None, put: float | None = None) -> dict:
    look = {"n": 20000, "memabrad": {"value": main if put is None else put}, "members_true_value": {"main": main},
            "gate": {"verdict": "promote" if main > 0.5 else "inconclusive"}}
    if vw is not None:
        look["vw"] = {"value": vw}
    return {"seed": seed, "workloads": [{"name": "w", "logging": {"value": 0.4}, "best_single": {"value": 0.5},
                                         "looks": [look]}]}


def test_each_seed_is_counted_against_the_baselines_and_vw() -> None:
    with bench_module("seeds.py") as s:
        rows = s.summarise([_result(1, 0.6, 0.55), _result(2, 0.49, 0.5, put=0.52), _result(3, 0.7, 0.71)])
        (row,) = rows
        assert row["seeds"] == [1, 2, 3] and row["main"] == [0.6, 0.49, 0.7] and row["put_forward"][1] == 0.52
        assert row["over_baselines"] == 2 and row["over_vw"] == 1 and row["with_vw"] == 3
        assert row["promoted"] == 2 and row["main_min"] == 0.49
        assert abs(row["main_mean"] - (0.6 + 0.49 + 0.7) / 3) < 1e-12
        assert s.summarise([_result(1, 0.6, None)], sizes={5000}) == []
        assert "| w | 20,000 | 3 |" in s.table(rows)


def test_the_summary_reads_runs_made_already(tmp_path: Path) -> None:
    for seed, main in ((4, 0.6), (5, 0.62)):
        (tmp_path / f"q-seed{seed}.json").write_text(json.dumps(_result(seed, main, 0.61)), encoding="utf-8")
    out = tmp_path / "summary.json"
    with bench_module("seeds.py") as s:
        assert s.main(["--from", str(tmp_path / "q-seed*.json"), "--out", str(out)]) == 0
        assert s.parse_seeds("1,4-6") == [1, 4, 5, 6]
    (row,) = json.loads(out.read_text(encoding="utf-8"))["rows"]
    assert row["seeds"] == [4, 5] and row["over_vw"] == 1
