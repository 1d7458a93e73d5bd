"""The challenger portfolio: members learn side by side, the chosen one is judged at alpha / M, the
choice keeps the false-promotion rate at its nominal level, and state and replays stay deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from memabrad.config import Config, ConfigError, load_config
from memabrad.learning.frozen import FrozenScorer
from memabrad.learning.learner import RouterLearner
from memabrad.learning.portfolio import Member, member_confidence, members_of
from memabrad.learning.progressive import ProgressiveEvidence
from memabrad.learning.router import Router
from memabrad.promotion.evaluation import evaluate
from memabrad.promotion.policy import PolicySettings
from memabrad.promotion.portfolio import selector
from memabrad.sim import Simulator
from memabrad.wire.parse import parse_trajectory

MEMBERS = [{"name": "slow", "learning_rate": 0.1}, {"name": "bold", "pessimism": 0.0},
           {"name": "careful", "pessimism": 2.0}]


def _cfg(members: list[dict] | None = None) -> Config:
    return Config.model_validate({"router": {"portfolio": MEMBERS if members is None else members}})


def _trajectories(n: int, seed: int = 3) -> list:
    return [parse_trajectory(json.dumps(row)) for row in Simulator(seed=seed).generate(n)]


def test_members_share_the_main_model_unless_they_learn_at_their_own_rate() -> None:
    learner = RouterLearner.new("default", _cfg())
    slow, bold, careful = learner.portfolio
    assert slow.own_model and slow.router is not learner.challenger and slow.learning_rate == 0.1
    assert bold.router is learner.challenger and not bold.own_model and bold.pessimism == 0.0
    assert careful.router is learner.challenger and careful.pessimism == 2.0
    for t in _trajectories(300):
        learner.observe(t)
    assert slow.router.reward_n == learner.challenger.reward_n > 0  # the same training stream
    assert slow.router.fingerprint() != learner.challenger.fingerprint()
    assert all(m.evidence.n == 300 for m in learner.members())  # every member is judged on every trajectory


@pytest.mark.parametrize("members", [[{"name": f"m{i}"} for i in range(5)], [{"name": "a"}, {"name": "a"}],
                                     [{"name": "main"}], [{"name": "a", "learning_rate": 0}]])
def test_portfolio_config_is_bounded_and_names_are_distinct(tmp_path: Path, members: list[dict]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"router": {"portfolio": members}}))  # JSON is YAML
    with pytest.raises(ConfigError, match="router.portfolio"):
        load_config(path)


def _member(name: str, rng: np.random.Generator, n: int, delta: float, ev: ProgressiveEvidence) -> Member:
    """A member whose reward advantage over the baseline is ``delta`` (noise sd 1); guardrails identical."""
    d = rng.normal(delta, 1.0, n)
    for i in range(n):
        ev.add((0.5 + d[i], 0.05, 500.0), (0.5, 0.05, 500.0), weight=1.0, unsupported=False, at=str(i))
    return Member(name, Router(), 1.0, False, ev)


def test_selection_keeps_the_false_promotion_rate_nominal() -> None:
    """No member is better; four members with independent noise (the worst case for picking the best),
    a look every 250 trajectories up to 2,500, 200 seeded repetitions, alpha 0.2 and a zero reward
    threshold (so that rates are large enough to see). Each member judged at alpha / 4: the share of
    runs that ever promote stays under alpha (it is 0 here: confidence sequences are conservative).
    Judged at alpha each, the same selection promotes noise (9 of 200 runs with these seeds): the
    correction is what keeps the rate."""
    settings = PolicySettings(required_task_count=100, min_reward_delta=0.0)
    fair, naive = selector(settings, 0.8), selector(settings, 1.0 - 0.2 * 4)  # naive: alpha 0.2 per member
    promoted = {"fair": 0, "naive": 0}
    for rep in range(200):
        rng = np.random.default_rng(rep)
        evs = [ProgressiveEvidence() for _ in range(4)]
        hit = {"fair": False, "naive": False}
        for _look in range(10):
            members = [_member(f"m{j}", rng, 250, 0.0, evs[j]) for j in range(4)]
            for ev in evs:
                ev.mark_look()
            for name, select in (("fair", fair), ("naive", naive)):
                chosen, rows = select(members)
                hit[name] |= rows[chosen].verdict == "promote"
        for name in promoted:
            promoted[name] += hit[name]
    assert promoted["fair"] <= 0.2 * 200
    assert promoted["naive"] > promoted["fair"]


def test_the_truly_better_member_is_put_forward() -> None:
    rng = np.random.default_rng(1)
    evs = [ProgressiveEvidence() for _ in range(3)]
    members = [_member(name, rng, 2000, delta, ev) for name, delta, ev in
               zip(("main", "a", "b"), (0.0, 0.3, 0.05), evs, strict=True)]
    for ev in evs:
        ev.mark_look()
    chosen, rows = selector(PolicySettings(), 0.95)(members)
    assert members[chosen].name == "a" and rows[chosen].chosen and rows[chosen].verdict == "promote"
    assert [r.name for r in rows] == ["main", "a", "b"] and sum(r.chosen for r in rows) == 1
    assert rows[1].reward_low > 0.2 and rows[0].reward_low < 0.0 < rows[0].reward_high


def test_the_chosen_member_is_judged_at_alpha_over_members_and_the_report_lists_them() -> None:
    cfg = _cfg()
    learner = RouterLearner.new("default", cfg)
    learner.set_baseline(None)
    for t in _trajectories(1500, seed=5):
        learner.observe(t)
    settings = PolicySettings.from_config(cfg.promotion, cfg.evaluation)
    snap = learner.snapshot(selector(settings, 0.95))
    assert snap.portfolio_size == 4 and snap.member in {"main", "slow", "bold", "careful"}
    chosen = next(m for m in learner.members() if m.name == snap.member)
    assert snap.progressive.to_state() == chosen.evidence.to_state()
    assert snap.challenger.pessimism == chosen.pessimism
    ev = evaluate(snap, None, settings)
    seq = ev.result.sequential
    assert seq is not None and seq["portfolio_members"] == 4
    assert seq["alpha_spent"] == pytest.approx(0.05)  # over the four members
    assert 1.0 - ev.result.confidence <= 1.0 - member_confidence(0.95, 4) + 1e-12  # the chosen one's share
    listed = snap.evidence()["portfolio"]
    assert listed["chosen"] == snap.member and [m["name"] for m in listed["members"]] == ["main", "slow", "bold",
                                                                                         "careful"]


def test_without_a_portfolio_nothing_changes() -> None:
    cfg = _cfg([])
    a, b = RouterLearner.new("default", cfg), RouterLearner.new("default", cfg)
    for t in _trajectories(600, seed=7):
        a.observe(t)
        b.observe(t)
    settings = PolicySettings.from_config(cfg.promotion, cfg.evaluation)
    sa, sb = a.snapshot(), b.snapshot(selector(settings, 0.95))
    assert sa.portfolio == sb.portfolio == () and sa.portfolio_size == 1
    assert sa.challenger.fingerprint() == sb.challenger.fingerprint()
    assert "portfolio" not in a.to_state()


def test_state_keeps_configured_members_and_drops_changed_ones() -> None:
    learner = RouterLearner.new("default", _cfg())
    for t in _trajectories(200):
        learner.observe(t)
    state = json.loads(json.dumps(learner.to_state()))
    same = RouterLearner.from_state(state, _cfg())
    assert same.to_state() == learner.to_state()
    changed = RouterLearner.from_state(state, _cfg([{"name": "slow", "learning_rate": 0.2},
                                                    {"name": "bold", "pessimism": 0.0}]))
    slow, bold = changed.portfolio
    assert slow.router.reward_n == 0 and slow.evidence.n == 0  # new settings: starts afresh
    assert bold.evidence.n == 200 and bold.router is changed.challenger  # kept
    assert RouterLearner.from_state(state, _cfg([])).portfolio == []
    assert [m.name for m in RouterLearner.from_state(state, load_config(None)).portfolio] == ["careful"]


@pytest.mark.parametrize("applied_at", [1000, 1500])
def test_a_replay_with_a_portfolio_makes_the_same_choices_and_evidence(applied_at: int) -> None:
    """kill -9 after a promotion, before the next checkpoint: the replay (restored from the last
    checkpoint, told of the promoted version at restore) chooses the same member at every look and
    ends with every member's evidence and model identical to the uninterrupted run's."""
    cfg = _cfg()
    settings = PolicySettings.from_config(cfg.promotion, cfg.evaluation)
    select = selector(settings, 0.95)
    ts = _trajectories(2600, seed=21)
    run = RouterLearner.new("default", cfg)
    run.set_baseline(None)
    for t in ts[:1000]:
        run.observe(t)
    look = run.snapshot(select)
    promoted = Router.from_bytes(look.challenger.to_bytes(), version_id="default-v1")
    for t in ts[1000:applied_at]:
        run.observe(t)
    run.set_baseline(promoted, FrozenScorer(promoted), from_look=look.sequence)
    for t in ts[applied_at:2000]:
        run.observe(t)
    second = run.snapshot(select)
    for t in ts[2000:]:
        run.observe(t)

    replay = RouterLearner.new("default", cfg)
    replay.set_baseline(None)
    for t in ts[:700]:
        replay.observe(t)
    replay = RouterLearner.from_state(json.loads(json.dumps(replay.to_state())), cfg)
    replay.set_baseline(promoted, FrozenScorer(promoted), from_look=1)
    for t in ts[700:1000]:
        replay.observe(t)
    again = replay.snapshot(select)
    for t in ts[1000:2000]:
        replay.observe(t)
    second_again = replay.snapshot(select)
    for t in ts[2000:]:
        replay.observe(t)
    assert (again.member, again.portfolio) == (look.member, look.portfolio)
    assert (second_again.member, second_again.portfolio) == (second.member, second.portfolio)
    assert second_again.challenger.fingerprint() == second.challenger.fingerprint()
    assert replay.to_state() == run.to_state()
    assert all(m.evidence.baseline_version_id == "default-v1" for m in replay.members())


def test_members_of_builds_own_models_only_for_other_rates() -> None:
    main = Router(learning_rate=0.5)
    cfg = _cfg([{"name": "same", "learning_rate": 0.5}, {"name": "other", "learning_rate": 0.25}])
    same, other = members_of(main, list(cfg.router.portfolio))
    assert same.router is main and not same.own_model
    assert other.own_model and other.router.learning_rate == 0.25 and other.pessimism == main.pessimism


def test_the_report_page_names_the_member_put_forward() -> None:
    from memabrad.report.history import EvaluationRecord

    report = {"report_id": "default-e000003-ab", "evaluation_sequence": 3, "verdict": "promote",
              "outcome": "promoted",
              "benchmark": {"method": "progressive", "sequential": {"alpha": 0.025, "looks": 3}},
              "evidence": {"portfolio": {"chosen": "careful", "members": [{"name": "main"}, {"name": "careful"}]}}}
    rec = EvaluationRecord.from_report(report)
    assert (rec.member, rec.members) == ("careful", 2)
    assert rec.evidence_note == "progressive · α 0.025 over 3 looks · member careful of 2"
    report.pop("evidence")
    assert EvaluationRecord.from_report(report).evidence_note == "progressive · α 0.025 over 3 looks"
    report["gates"] = {"reward_delta": {"value": 0.1, "threshold": 0.01, "passed": True, "ci_low": 0.05,
                                        "ci_high": 0.15, "one_sided": True, "alpha": 0.025}}
    assert EvaluationRecord.from_report(report).evidence_note == ("progressive · α 0.025 over 3 looks · "
                                                                  "one-sided gate bounds")


def test_when_no_member_passes_the_main_challenger_goes_forward() -> None:
    rng = np.random.default_rng(2)
    evs = [ProgressiveEvidence() for _ in range(2)]
    members = [_member("main", rng, 60, -0.5, evs[0]), _member("other", rng, 60, 0.0, evs[1])]
    for ev in evs:
        ev.mark_look()
    chosen, rows = selector(PolicySettings(), 0.95)(members)
    assert rows[1].reward_low > rows[0].reward_low  # the other member looks better, but nothing passes
    assert chosen == 0 and rows[0].chosen and all(r.verdict != "promote" for r in rows)
