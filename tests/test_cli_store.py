"""Tests of the store commands: ``status``, ``versions``, ``rollback`` and ``simulate``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import files, run_cli

from memabrad import Router, RouterVersionStore
from memabrad.cli.main import main
from memabrad.sim import Simulator, write_jsonl

pytestmark = pytest.mark.usefixtures("hermetic")  # no MEMABRAD_* variables, no ./config.yaml


def _router(n: int, seed: int) -> Router:
    r = Router()
    for t in Simulator(seed=seed).generate(n):
        d, o = t["decision"], t["outcome"]
        r.learn(r.featurizer.featurize(t["task"]), d["route"], propensity=d["propensity"], reward=o["reward"],
                error=o["error"], latency_ms=o["latency_ms"])
    return r


class _Clock:
    """A clock that advances one minute per reading, for distinct, ordered version ids."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def two_versions(tmp_path: Path) -> tuple[Path, str, str]:
    """A store where v1 was promoted, then v2 replaced it (v2 active)."""
    base = tmp_path / "base"
    store = RouterVersionStore(base, clock=_Clock())
    v1 = store.save_version(_router(200, 1).version_files(), report_id="default-e000001-aaaa").version_id
    store.activate(v1, source="cycle")
    v2 = store.save_version(_router(300, 2).version_files(), report_id="default-e000002-bbbb").version_id
    store.activate(v2, source="cycle")
    assert v1 < v2
    return base, v1, v2


def _marked(out: str) -> dict[str, bool]:
    """version id -> whether its line carries the active '*'."""
    rows = {}
    for line in out.splitlines():
        if line.strip():
            rows[line[2:].split()[0]] = line.startswith("*")
    return rows


def test_versions_lists_newest_first_with_the_active_one_marked(two_versions: tuple[Path, str, str],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    base, v1, v2 = two_versions
    code, out, _ = run_cli(capsys, "versions", "--base-dir", str(base))
    assert code == 0
    assert list(_marked(out)) == [v2, v1]
    assert _marked(out) == {v2: True, v1: False}
    assert "default-e000002-bbbb" in out
    code, out, _ = run_cli(capsys, "versions", "--base-dir", str(base), "--json")
    data = json.loads(out)
    assert data["active_version"] == v2
    assert [(r["version_id"], r["active"]) for r in data["versions"]] == [(v2, True), (v1, False)]


def test_rollback_restores_a_prior_version_with_an_audit_trail(two_versions: tuple[Path, str, str],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    base, v1, v2 = two_versions
    code, out, err = run_cli(capsys, "rollback", v1, "--base-dir", str(base), "--reason", "reward dropped")
    assert code == 0, err
    assert out.strip() == f"active version: {v1} (rolled back from {v2})"
    store = RouterVersionStore(base)
    current = store.get_current()
    assert current is not None
    assert (current["version_id"], current["rollback_from"], current["prior_version_id"]) == (v1, v2, v2)
    assert datetime.fromisoformat(current["rolled_back_at"].replace("Z", "+00:00")).tzinfo is not None
    history = current["history"]
    assert [h["action"] for h in history] == ["activate", "activate", "rollback"]
    last = history[-1]
    assert (last["from"], last["to"], last["trigger"], last["reason"]) == (v2, v1, "cli", "reward dropped")
    assert Router.load(store.version_dir(store.active_version_id())).fingerprint() == _router(200, 1).fingerprint()

    code, out, _ = run_cli(capsys, "status", "--base-dir", str(base))
    assert code == 0
    assert f"active version:   {v1}" in out
    assert f"last rollback:    from {v2} at {current['rolled_back_at']}" in out
    code, out, _ = run_cli(capsys, "status", "--base-dir", str(base), "--json")
    status = json.loads(out)
    assert status["active_version"] == v1 and status["current"]["rollback_from"] == v2
    assert status["versions"] == 2
    code, out, _ = run_cli(capsys, "versions", "--base-dir", str(base))
    assert _marked(out) == {v2: False, v1: True}


def test_rollback_to_an_unknown_version_exits_2_and_changes_nothing(two_versions: tuple[Path, str, str],
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    base, _, _ = two_versions
    before = files(base)
    for bad in ("20990101-000000", "latest"):
        code, out, err = run_cli(capsys, "rollback", bad, "--base-dir", str(base))
        assert code == 2 and out == ""
        assert bad in err
    assert files(base) == before


def test_rollback_is_refused_while_a_daemon_holds_the_store(two_versions: tuple[Path, str, str],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    base, v1, v2 = two_versions
    store = RouterVersionStore(base)
    lock = store.daemon_lock().acquire(blocking=False)
    try:
        code, _, err = run_cli(capsys, "rollback", v1, "--base-dir", str(base))
    finally:
        lock.release()
    assert code == 1 and "refused" in err
    assert store.active_version_id() == v2


def test_status_of_an_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "empty"
    code, out, _ = run_cli(capsys, "status", "--base-dir", str(base))
    assert code == 0
    assert "active version:   (none: the logging policy is the baseline)" in out
    code, out, _ = run_cli(capsys, "status", "--base-dir", str(base), "--json")
    data = json.loads(out)
    assert (data["active_version"], data["versions"], data["last_report"], data["counters"]) == (None, 0, None, None)
    code, out, _ = run_cli(capsys, "versions", "--base-dir", str(base))
    assert code == 0 and out.strip() == "(no versions saved)"
    assert not base.exists()  # read-only commands create nothing


def test_status_after_a_cycle_shows_the_last_report_and_counters(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    traj = tmp_path / "traj"
    traj.mkdir()
    write_jsonl(traj / "t.jsonl", Simulator(seed=12).generate(800))
    base = tmp_path / "base"
    code, out, err = run_cli(capsys, "cycle", "--base-dir", str(base), "--trajectories", str(traj),
                          "--min-new-trajectories", "100")
    assert code == 0, err
    report = json.loads(out)
    code, out, _ = run_cli(capsys, "status", "--base-dir", str(base), "--json")
    data = json.loads(out)
    assert data["last_report"]["report_id"] == report["report_id"]
    assert data["last_report"]["verdict"] == report["verdict"]
    assert data["counters"]["learned"] == 800 and data["counters"]["since_evaluation"] == 0
    assert data["reports"] == 1
    code, out, _ = run_cli(capsys, "status", "--base-dir", str(base))
    assert f"last report:      {report['report_id']} {report['verdict']}" in out
    assert "learned:          800" in out


def test_status_counts_held_out_trajectories_trained_once_they_left_the_window(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    traj = tmp_path / "traj"
    traj.mkdir()
    write_jsonl(traj / "t.jsonl", Simulator(seed=12).generate(800))
    base = tmp_path / "base"
    monkeypatch.setenv("MEMABRAD_EVALUATION__WINDOW_SIZE", "50")
    code, _, err = run_cli(capsys, "cycle", "--base-dir", str(base), "--trajectories", str(traj),
                           "--min-new-trajectories", "100")
    assert code == 0, err
    code, out, _ = run_cli(capsys, "status", "--base-dir", str(base), "--json")
    c = json.loads(out)["counters"]
    assert c["trained"] == 800 - 50 and c["learned_after_holdout"] == c["benchmarked"] - 50 > 0
    code, out, _ = run_cli(capsys, "status", "--base-dir", str(base))
    assert f"benchmarked {c['benchmarked']}, of them trained later {c['benchmarked'] - 50})" in out


def test_routers_are_separate(two_versions: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    base, _, _ = two_versions
    code, out, _ = run_cli(capsys, "versions", "--base-dir", str(base), "--router", "other", "--json")
    assert code == 0 and json.loads(out)["versions"] == []
    code, _, err = run_cli(capsys, "status", "--base-dir", str(base), "--router", "bad/id")
    assert code == 2 and "bad/id" in err


@pytest.mark.parametrize("argv", [["rollback"], ["versions", "--nope"], ["status", "extra-arg"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err


def test_simulate_writes_the_seeded_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "sim" / "t.jsonl"
    code, _, err = run_cli(capsys, "simulate", "--n", "40", "--seed", "6", "--out", str(out_file))
    assert code == 0 and "wrote 40 trajectories" in err
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert rows == Simulator(seed=6).generate(40)
    code, _, err = run_cli(capsys, "simulate", "--n", "0", "--out", str(out_file))
    assert code == 2 and "--n" in err
    code, _, err = run_cli(capsys, "simulate", "--epsilon", "2", "--out", str(out_file))
    assert code == 2 and "--epsilon" in err
