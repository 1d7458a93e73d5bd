"""End-to-end tests of the offline cycle (``run_online_learning_workflow`` and ``memabrad cycle``)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import files, run_cli

from memabrad import Router, RouterVersionStore, run_online_learning_workflow
from memabrad.cli.main import main
from memabrad.config import Config, load_config
from memabrad.cycle import LEARNER_STATE_FILE, CycleInputError
from memabrad.learning.case_index import CaseIndex
from memabrad.learning.features import TaskView, normalize_text
from memabrad.learning.task_identity import case_query
from memabrad.promotion.policy import PolicySettings
from memabrad.sim import Simulator, true_value, true_value_of_logging, write_jsonl

pytestmark = pytest.mark.usefixtures("hermetic")  # no MEMABRAD_* variables, no ./config.yaml
N_TRAIN = 5000
TRUTH_SEED = 12345  # fresh contexts, not the training stream


def _cfg() -> Config:
    return load_config(None, {})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("traj")
    write_jsonl(d / "batch-1.jsonl", Simulator(seed=3).generate(N_TRAIN))
    return d


@pytest.fixture(scope="module")
def extra(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trajectories directory holding 1,000 trajectories the promoted store has not seen."""
    d = tmp_path_factory.mktemp("traj-extra")
    write_jsonl(d / "batch-2.jsonl", Simulator(seed=4).generate(1000))
    return d


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory, data: Path) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("promoted") / "base"
    result = run_online_learning_workflow(base, data, min_new_trajectories=1000, config=_cfg())
    return base, result


@pytest.fixture
def store_copy(promoted: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    base = tmp_path / "base"
    shutil.copytree(promoted[0], base)
    return base


def test_cycle_promotes_a_router_that_truly_beats_the_logging_policy(promoted: tuple[Path, dict[str, Any]]) -> None:
    base, result = promoted
    assert (result["status"], result["verdict"], result["outcome"]) == ("evaluated", "promote", "promoted")
    assert result["promoted"] is True and result["dry_run"] is False
    assert result["new_trajectories"] == N_TRAIN
    store = RouterVersionStore(base)
    vid = result["version_id"]
    assert re.fullmatch(r"\d{8}-\d{6}(-\d+)?", vid)
    assert store.active_version_id() == vid
    router = Router.load(store.version_dir(vid))
    assert router.case_index is not None  # the router's case index is attached for serving
    promoted_value = true_value(lambda task, c: router.choose(task, c).route, n_contexts=5000, seed=TRUTH_SEED)
    logging_value = true_value_of_logging(Simulator(seed=TRUTH_SEED), n_contexts=5000)
    assert promoted_value.reward > logging_value.reward + 0.05, (promoted_value, logging_value)


def test_report_carries_gates_intervals_slices_evidence_and_gate_hash(promoted: tuple[Path, dict[str, Any]]) -> None:
    base, result = promoted
    store = RouterVersionStore(base)
    for name in ("reward_delta", "error_rate_delta", "latency_delta_ms", "task_count"):
        gate = result["gates"][name]
        assert isinstance(gate["value"], (int, float)) and isinstance(gate["threshold"], (int, float))
        assert gate["passed"] is True
    bench = result["benchmark"]
    assert bench["estimator"] == "dr"
    # judged on every trajectory (progressive evidence); the hold-out window rides along as a veto
    assert bench["method"] == "progressive" and bench["task_count"] == N_TRAIN
    seq = bench["sequential"]  # the whole evidence is stream 0, with its share of the alpha
    assert seq["looks"] == 1 and seq["alpha_spent"] == 0.05
    assert seq["portfolio_members"] == 2  # the default portfolio: the main challenger and one member
    assert seq["alpha"] == pytest.approx(0.05 / 2 * 6 / math.pi ** 2, abs=1e-6)
    assert result["evidence"]["portfolio"]["chosen"] == seq["portfolio_member"]
    holdout = bench["holdout"]
    assert holdout["task_count"] == result["evidence"]["benchmark_window"]["count"] > 800
    assert result["gates"]["holdout_check"]["passed"] is True
    for role in ("baseline", "challenger"):
        for metric in ("reward", "error_rate", "latency_ms"):
            assert bench[role][f"{metric}_ci_low"] <= bench[role][metric] <= bench[role][f"{metric}_ci_high"]
    assert bench["baseline"]["version_id"] == "logging"
    assert set(bench["slices"]) == {"qa", "coding", "chitchat", "research", "recall", "ambiguous"}
    assert sum(s["task_count"] for s in bench["slices"].values()) == holdout["task_count"]
    ev = result["evidence"]
    assert ev["trained_total"] + holdout["task_count"] == N_TRAIN
    assert ev["trained_since_last_evaluation"]["count"] == ev["trained_total"]
    meta = store.get_version(result["version_id"])
    assert ev["challenger_sha256"] == meta.sha256  # the saved model is exactly the evaluated challenger
    assert meta.report_id == result["report_id"]
    cfg = _cfg()
    assert result["gate_config_hash"] == PolicySettings.from_config(cfg.promotion, cfg.evaluation).config_hash()
    assert result["baseline_version_id"] is None and result["previous_version_id"] is None
    saved = store.load_report(result["report_id"])
    assert saved == {k: v for k, v in result.items() if k in saved}
    assert len(saved) >= 20
    current = store.get_current()
    assert current is not None
    assert (current["version_id"], current["report_id"], current["promotion_source"]) == (
        result["version_id"], result["report_id"], "cycle")


def test_cycle_persists_learner_state_seen_ids_and_case_index(promoted: tuple[Path, dict[str, Any]]) -> None:
    base, _ = promoted
    router_dir = base / "default"
    seen = json.loads((router_dir / "seen-trajectories.json").read_text())["ids"]
    assert len(seen) == N_TRAIN and seen == sorted(seen)
    state = json.loads((router_dir / LEARNER_STATE_FILE).read_text())
    assert state["counters"]["learned"] == N_TRAIN and state["counters"]["since_evaluation"] == 0
    assert len(CaseIndex.load(router_dir / "case-index.json")) > 1000


def test_second_run_without_new_trajectories_is_skipped_and_changes_nothing(
        store_copy: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = files(store_copy)
    result = run_online_learning_workflow(store_copy, data, min_new_trajectories=1, config=_cfg())
    assert result["status"] == "skipped"
    assert (result["new_trajectories"], result["already_seen"]) == (0, N_TRAIN)
    assert files(store_copy) == before
    code, out, _ = run_cli(capsys, "cycle", "--base-dir", str(store_copy), "--trajectories", str(data))
    assert code == 0
    assert json.loads(out)["status"] == "skipped"
    assert files(store_copy) == before


def test_below_min_new_trajectories_is_skipped(tmp_path: Path, data: Path) -> None:
    result = run_online_learning_workflow(tmp_path / "b", data, min_new_trajectories=N_TRAIN + 1, config=_cfg())
    assert result["status"] == "skipped" and str(N_TRAIN + 1) in result["reason"]
    assert not (tmp_path / "b").exists()


def test_dry_run_saves_only_a_report(store_copy: Path, extra: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = files(store_copy)
    reports_before = {k for k in before if k.startswith("default/training-reports/")}
    args = ("cycle", "--base-dir", str(store_copy), "--trajectories", str(extra), "--dry-run",
            "--min-new-trajectories", "100")
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    report = json.loads(out)
    assert (report["status"], report["outcome"], report["dry_run"]) == ("evaluated", "dry_run", True)
    assert report["version_id"] is None
    assert report["new_trajectories"] == 1000
    assert report["reasons"][-1] == "dry run: nothing promoted"
    after = files(store_copy)
    new_files = set(after) - set(before)
    assert new_files == {f"default/training-reports/{report['report_id']}.json"}
    assert json.loads(after[f"default/training-reports/{report['report_id']}.json"])["dry_run"] is True
    assert {k: v for k, v in after.items() if k in before} == before  # nothing else touched
    assert reports_before  # the promotion's report is still there
    # Nothing was learned for good, so the same dry run again is the same evaluation.
    code, out2, _ = run_cli(capsys, *args)
    assert code == 0 and json.loads(out2)["report_id"] == report["report_id"]


def test_unknown_baseline_version_exits_2_naming_it(store_copy: Path, extra: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    before = files(store_copy)
    for bad in ("20990101-000000", "nope"):
        code, out, err = run_cli(capsys, "cycle", "--base-dir", str(store_copy), "--trajectories", str(extra),
                              "--baseline-version", bad, "--min-new-trajectories", "1")
        assert code == 2 and out == ""
        assert bad in err
    assert files(store_copy) == before


def test_pinned_baseline_is_recorded_in_the_report(store_copy: Path, extra: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    store = RouterVersionStore(store_copy)
    active = store.active_version_id()
    other = store.save_version(Router().version_files(), report_id="manual-untrained").version_id
    code, out, err = run_cli(capsys, "cycle", "--base-dir", str(store_copy), "--trajectories", str(extra),
                          "--baseline-version", other, "--dry-run", "--min-new-trajectories", "100")
    assert code == 0, err
    report = json.loads(out)
    assert report["baseline_version_id"] == other
    assert report["baseline_pinned"] is True
    assert report["benchmark"]["baseline"]["version_id"] == other
    assert report["previous_version_id"] == active
    assert store.active_version_id() == active
    # A pin in the store applies without the flag.
    store.pin_baseline(other)
    report = run_online_learning_workflow(store_copy, extra, min_new_trajectories=100, dry_run=True, config=_cfg())
    assert (report["baseline_version_id"], report["baseline_pinned"]) == (other, True)
    # The active version as baseline is the default, not a pin.
    store.unpin_baseline()
    report = run_online_learning_workflow(store_copy, extra, min_new_trajectories=100, dry_run=True, config=_cfg())
    assert (report["baseline_version_id"], report["baseline_pinned"]) == (active, False)


def _bad_line(path: Path, rows: list[dict[str, Any]]) -> None:
    lines = [json.dumps(r) for r in rows]
    lines.insert(1, "{not json")
    broken = dict(rows[2], trajectory_id="broken-route")
    broken["decision"] = dict(broken["decision"], route="not-a-candidate")
    lines.append(json.dumps(broken))
    path.write_text("\n".join(lines) + "\n")


def test_bad_files_exit_2_with_file_and_line_and_change_nothing(store_copy: Path, data: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    traj = tmp_path / "traj"
    shutil.copytree(data, traj)
    bad = traj / "new.jsonl"
    _bad_line(bad, Simulator(seed=77).generate(3))  # lines: ok, bad JSON, ok, ok, broken route
    before = files(store_copy)
    code, out, err = run_cli(capsys, "cycle", "--base-dir", str(store_copy), "--trajectories", str(traj),
                          "--min-new-trajectories", "1")
    assert code == 2 and out == ""
    assert f"{bad}:2" in err
    assert f"{bad}:5 (decision.route)" in err
    assert "2 invalid trajectory record(s), nothing changed" in err
    assert files(store_copy) == before
    with pytest.raises(CycleInputError, match=re.escape(f"{bad}:2")):
        run_online_learning_workflow(store_copy, traj, min_new_trajectories=1, config=_cfg())
    assert files(store_copy) == before


def test_invalid_json_array_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = tmp_path / "traj"
    traj.mkdir()
    (traj / "arr.json").write_text('[{"schema_version": 1}, ')
    code, _, err = run_cli(capsys, "cycle", "--base-dir", str(tmp_path / "b"), "--trajectories", str(traj))
    assert code == 2 and str(traj / "arr.json") in err
    rows = Simulator(seed=1).generate(3)
    rows[1]["outcome"]["latency_ms"] = -5
    (traj / "arr.json").write_text(json.dumps(rows))
    code, _, err = run_cli(capsys, "cycle", "--base-dir", str(tmp_path / "b"), "--trajectories", str(traj))
    assert code == 2 and f"{traj / 'arr.json'}:2 (outcome.latency_ms)" in err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("argv", [
    ["cycle", "--min-new-trajectories", "abc"],
    ["cycle", "--no-such-flag"],
    ["no-such-command"],
    [],
])
def test_bad_cli_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err


def test_bad_cli_values_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "cycle", "--base-dir", str(tmp_path), "--min-new-trajectories", "-1")
    assert code == 2 and "--min-new-trajectories" in err
    code, _, err = run_cli(capsys, "cycle", "--base-dir", str(tmp_path), "--trajectories", str(tmp_path / "none"))
    assert code == 2 and "does not exist" in err


def test_invalid_router_id_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "cycle", "--base-dir", str(tmp_path), "--router", "bad/router")
    assert code == 2 and "bad/router" in err


def test_case_index_path_and_rebuild(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = tmp_path / "traj"
    traj.mkdir()
    rows = Simulator(seed=8).generate(1200)
    write_jsonl(traj / "t.jsonl", rows)
    base = tmp_path / "base"
    index = tmp_path / "elsewhere" / "idx.json"
    code, out, err = run_cli(capsys, "cycle", "--base-dir", str(base), "--trajectories", str(traj),
                          "--min-new-trajectories", "100", "--case-index", str(index))
    assert code == 0, err
    assert json.loads(out)["status"] == "evaluated"
    distinct = len({case_query(TaskView.of(r["task"]))[0] for r in rows})  # a task: its text and its fields
    assert distinct > len({normalize_text(r["task"]["input"]) for r in rows})
    assert len(CaseIndex.load(index)) == distinct
    assert index.read_bytes() == (base / "default" / "case-index.json").read_bytes()
    # Rebuild from all trajectories at another path, with nothing new to learn.
    rebuilt = tmp_path / "rebuilt" / "idx.json"
    code, out, err = run_cli(capsys, "cycle", "--base-dir", str(base), "--trajectories", str(traj),
                          "--case-index", str(rebuilt), "--rebuild-case-index")
    assert code == 0, err
    assert json.loads(out)["status"] == "skipped"
    idx = CaseIndex.load(rebuilt)
    assert len(idx) == distinct
    m = idx.hint_of(TaskView.of(rows[0]["task"]))
    assert m is not None and m.similarity == 1.0


def test_json_array_and_single_object_files_are_read(tmp_path: Path) -> None:
    rows = Simulator(seed=9).generate(60)
    traj = tmp_path / "traj"
    (traj / "nested").mkdir(parents=True)
    (traj / "array.json").write_text(json.dumps(rows[:30]))
    (traj / "one.json").write_text(json.dumps(rows[30], indent=2))
    write_jsonl(traj / "nested" / "rest.jsonl", rows[31:59])
    other = dict(rows[59], router_id="other", trajectory_id="other-1")
    (traj / "other.json").write_text(json.dumps(other))
    (traj / "ignored.txt").write_text("not a trajectory file")
    result = run_online_learning_workflow(tmp_path / "base", traj, min_new_trajectories=1, dry_run=True,
                                          config=_cfg())
    assert result["trajectories_read"] == 60
    assert result["other_router_trajectories"] == 1
    assert result["new_trajectories"] == 59
    assert result["status"] == "evaluated" and result["dry_run"] is True


def test_duplicate_ids_in_one_batch_are_learned_once(tmp_path: Path) -> None:
    rows = Simulator(seed=10).generate(300)
    traj = tmp_path / "traj"
    traj.mkdir()
    write_jsonl(traj / "a.jsonl", rows)
    write_jsonl(traj / "b.jsonl", rows[:100])
    result = run_online_learning_workflow(tmp_path / "base", traj, min_new_trajectories=1, config=_cfg())
    assert result["new_trajectories"] == 300 and result["already_seen"] == 100
    state = json.loads((tmp_path / "base" / "default" / LEARNER_STATE_FILE).read_text())
    assert state["counters"]["learned"] == 300
