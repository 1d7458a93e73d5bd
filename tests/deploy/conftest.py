"""Shared fixtures of the deployment tests: a store with a real evaluation history."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from memabrad.config import load_config
from memabrad.cycle import run_online_learning_workflow
from memabrad.sim import Simulator, write_jsonl
from memabrad.store.versions import RouterVersionStore


@dataclass(frozen=True)
class HistoryStore:
    base: Path
    reports: list[dict]
    """The two cycles' results (training reports), in order."""
    first_version: str
    second_version: str
    rollback_reason: str


@pytest.fixture(scope="session")
def history_store(tmp_path_factory: pytest.TempPathFactory) -> HistoryStore:
    """Two offline cycles that both promote (point-estimate gates with a
    permissive reward threshold: this fixture exercises the report's pages, not learning), then an admin rollback."""
    base = tmp_path_factory.mktemp("store")
    cfg = load_config(None, {"MEMABRAD_PROMOTION__MODE": "point", "MEMABRAD_PROMOTION__MIN_REWARD_DELTA": "-0.5"})
    rows = Simulator(seed=3).generate(4000)
    reports = []
    for i, chunk in enumerate((rows[:2000], rows[2000:])):
        folder = base / "trajectories" / f"day{i}"
        folder.mkdir(parents=True)
        write_jsonl(folder / "t.jsonl", chunk)
        reports.append(run_online_learning_workflow(base, folder, min_new_trajectories=100, config=cfg))
    assert [r["outcome"] for r in reports] == ["promoted", "promoted"], [r.get("reasons") for r in reports]
    store = RouterVersionStore(base, "default")
    reason = "reward dropped <after> the 2nd promotion & more"
    store.rollback(reports[0]["version_id"], trigger="admin", request_id="r-1", requested_by="oncall@example.com",
                   reason=reason)
    return HistoryStore(base, reports, reports[0]["version_id"], reports[1]["version_id"], reason)
