"""``memabrad report``: history data from a real store, the self-contained page, the command."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from memabrad.cli.main import main
from memabrad.report import build_histories, discover_routers, render_report, router_history
from memabrad.report.history import GATE_ORDER, EvaluationRecord, VersionEvent
from memabrad.store.versions import RouterVersionStore

from .conftest import HistoryStore


def test_history_of_two_promotions_and_a_rollback(history_store: HistoryStore) -> None:
    h = router_history(RouterVersionStore(history_store.base, "default"))
    first, second = history_store.reports
    assert [e.report_id for e in h.evaluations] == [first["report_id"], second["report_id"]]
    assert [e.sequence for e in h.evaluations] == [1, 2]
    assert [e.outcome for e in h.evaluations] == ["promoted", "promoted"]
    assert [e.version_id for e in h.promotions] == [history_store.first_version, history_store.second_version]
    e1, e2 = h.evaluations
    assert e1.baseline_version_id is None and e2.baseline_version_id == history_store.first_version
    assert h.active_version == history_store.first_version
    assert set(h.versions) == {history_store.first_version, history_store.second_version}
    assert h.outcome_counts() == {"promoted": 2}
    assert h.skipped == ()


def test_gates_and_rewards_match_the_reports(history_store: HistoryStore) -> None:
    h = router_history(RouterVersionStore(history_store.base, "default"))
    for e, report in zip(h.evaluations, history_store.reports, strict=True):
        assert [g.name for g in e.gates][:4] == list(GATE_ORDER)
        for g in e.gates:
            raw = report["gates"][g.name]
            assert (g.value, g.threshold, g.passed, g.status) == (raw["value"], raw["threshold"], raw["passed"],
                                                                  raw["status"])
            assert g.reason == raw["reason"]
        bench = report["benchmark"]
        for role in ("baseline", "challenger"):
            est = getattr(e, role)
            assert (est.value, est.ci_low, est.ci_high) == (bench[role]["reward"], bench[role]["reward_ci_low"],
                                                            bench[role]["reward_ci_high"])
            assert est.ci_low <= est.value <= est.ci_high
        assert e.reward_delta is not None and e.reward_delta.value == bench["deltas"]["reward"]["value"]
        assert e.task_count == bench["task_count"] and e.estimator == bench["estimator"]
        assert e.reasons == tuple(report["reasons"])


def test_version_events_come_from_current_json(history_store: HistoryStore) -> None:
    h = router_history(RouterVersionStore(history_store.base, "default"))
    assert [ev.action for ev in h.events] == ["activate", "activate", "rollback"]
    a1, a2, rb = h.events
    assert (a1.from_version, a1.to_version) == (None, history_store.first_version)
    assert (a2.from_version, a2.to_version) == (history_store.first_version, history_store.second_version)
    assert a2.report_id == history_store.reports[1]["report_id"] and a2.source == "cycle"
    assert h.rollbacks == (rb,)
    assert (rb.from_version, rb.to_version, rb.trigger) == (history_store.second_version,
                                                            history_store.first_version, "admin")
    assert (rb.requested_by, rb.reason, rb.request_id) == ("oncall@example.com", history_store.rollback_reason, "r-1")
    timeline = h.timeline()
    assert [type(t) for t in timeline] == [EvaluationRecord, EvaluationRecord, VersionEvent]


def test_unreadable_and_partial_reports(history_store: HistoryStore, tmp_path: Path) -> None:
    base = tmp_path / "copy"
    shutil.copytree(history_store.base / "default", base / "default")
    reports = base / "default" / "training-reports"
    (reports / "broken.json").write_text("{not json")
    (reports / "old-style.json").write_text(json.dumps({"report_id": "old-style", "verdict": "reject",
                                                        "created_at": "2020-01-01T00:00:00Z"}))
    h = router_history(RouterVersionStore(base, "default"))
    assert len(h.evaluations) == 3 and h.evaluations[0].report_id == "old-style"
    old = h.evaluations[0]
    assert (old.outcome, old.gates, old.baseline, old.sequence) == ("rejected", (), None, None)
    assert len(h.skipped) == 1 and "broken" in h.skipped[0]
    page = render_report([h])
    assert "broken" in page and "old-style" in page


def test_discover_routers(history_store: HistoryStore, tmp_path: Path) -> None:
    assert discover_routers(history_store.base) == ["default"]  # not trajectories/ (no store inside)
    (tmp_path / "_checkpoints" / "memabrad").mkdir(parents=True)
    (tmp_path / "b" / "training-reports").mkdir(parents=True)
    (tmp_path / "a" / "router-versions").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("x")
    assert discover_routers(tmp_path) == ["a", "b"]
    assert discover_routers(tmp_path / "missing") == []
    assert [h.router_id for h in build_histories(tmp_path)] == ["a", "b"]
    assert all(not h.evaluations and not h.events for h in build_histories(tmp_path))


def test_page_is_self_contained_and_escaped(history_store: HistoryStore) -> None:
    page = render_report(build_histories(history_store.base), base_dir=str(history_store.base))
    lowered = page.lower()
    for forbidden in ("<script", "http://", "https://", "src=", "@import", "url(", "<link", "@font-face"):
        assert forbidden not in lowered, forbidden
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page and page.count("<svg") == 5  # reward + four gates
    for r in history_store.reports:
        assert r["report_id"] in page
    assert history_store.first_version in page and history_store.second_version in page
    assert "reward dropped &lt;after&gt; the 2nd promotion &amp; more" in page
    assert history_store.rollback_reason not in page
    assert "rollback → " + history_store.first_version in page
    table = page[page.index("Decisions (newest first)"):page.index("Version history")]
    assert table.count('class="chip" style="background:#16a34a">promoted<') == 2


def test_page_for_an_empty_router_and_no_routers(tmp_path: Path) -> None:
    (tmp_path / "r1" / "router-versions").mkdir(parents=True)
    page = render_report(build_histories(tmp_path))
    assert "No evaluations yet." in page and "<svg" not in page
    assert "No routers found." in render_report([])


def test_cli_writes_the_page(history_store: HistoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "--base-dir", str(history_store.base), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").count("<svg") == 5
    assert "default: 2 evaluations, 2 promotions, 1 rollbacks" in capsys.readouterr().out
    assert main(["report", "--base-dir", str(history_store.base), "--router", "default", "--out", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["routers"]["default"]["active_version"] == history_store.first_version
    assert summary["routers"]["default"]["evaluations"] == 2 and summary["out"] == str(out)


@pytest.mark.parametrize(("args", "message"), [
    (["--router", "nope"], "no store"),
    (["--router", "../x"], "expected 1-64 chars"),
    (["--base-dir", "/nonexistent/store"], "does not exist"),
])
def test_cli_bad_input_exits_2(history_store: HistoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               args: list[str], message: str) -> None:
    argv = ["report", "--out", str(tmp_path / "r.html")]
    if "--base-dir" not in args:
        argv += ["--base-dir", str(history_store.base)]
    assert main(argv + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("memabrad report: ") and message in err
    assert not (tmp_path / "r.html").exists()


def test_cli_empty_base_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--base-dir", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert "no router stores" in capsys.readouterr().err


def test_report_ids_and_versions_appear_in_time_order(history_store: HistoryStore) -> None:
    """The decisions table lists the newest first; the version history too."""
    page = render_report(build_histories(history_store.base))
    table = page[page.index("Decisions (newest first)"):page.index("Version history")]
    ids = [r["report_id"] for r in history_store.reports]
    assert table.index(ids[1]) < table.index(ids[0])
    history = page[page.index("Version history"):]
    assert re.search(r"rollback<.*promotion<.*promotion<", history, re.S)
