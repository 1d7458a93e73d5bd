"""Tests of the challenger-vs-baseline benchmark: paired deltas, slices, on-policy baseline, suite replay."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from memabrad.config import load_config
from memabrad.evaluation.benchmark import LoggedItem, SuiteItem, load_suite
from memabrad.evaluation.compare import LOGGING_POLICY, compare
from memabrad.learning.learner import RouterLearner
from memabrad.learning.router import Router
from memabrad.learning.snapshot import LearnerSnapshot
from memabrad.sim import Simulator, write_jsonl
from memabrad.wire.trajectory import Trajectory


@pytest.fixture(scope="module")
def snap() -> LearnerSnapshot:
    """A learner fed 3000 simulated trajectories: ~600 held out in the window, the rest trained on."""
    learner = RouterLearner.new("default", load_config(None, {}))
    for row in Simulator(seed=41).generate(3000):
        learner.observe(Trajectory.model_validate(row))
    return learner.snapshot()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> list[SuiteItem]:
    path = tmp_path_factory.mktemp("suite") / "suite.jsonl"
    write_jsonl(path, Simulator(seed=43).generate_suite(300))
    return load_suite(path)


def _weak_baseline() -> Router:
    """A version trained on a little data, so it differs from the challenger."""
    r = Router(version_id="20260101-000000")
    for t in Simulator(seed=44).generate(300):
        d, o = t["decision"], t["outcome"]
        r.learn(r.featurizer.featurize(t["task"]), d["route"], propensity=d["propensity"], reward=o["reward"],
                error=o["error"], latency_ms=o["latency_ms"])
    return r


def test_logging_baseline_is_the_on_policy_mean_of_the_window(snap: LearnerSnapshot) -> None:
    res = compare(snap.challenger, None, snap.window)
    window = snap.window
    assert res.baseline.name == LOGGING_POLICY
    assert res.estimator == "dr"
    assert res.task_count == res.logged_count == len(window) > 400
    assert res.suite_count == 0
    assert res.baseline.reward.value == pytest.approx(np.mean([i.reward for i in window]), abs=1e-12)
    assert res.baseline.error_rate.value == pytest.approx(np.mean([i.error for i in window]), abs=1e-12)
    assert res.baseline.latency_ms.value == pytest.approx(np.mean([i.latency_ms for i in window]), abs=1e-9)


@pytest.mark.parametrize("estimator", ["dr", "ips", "snips"])
def test_paired_delta_equals_difference_of_means(snap: LearnerSnapshot, estimator: str) -> None:
    res = compare(snap.challenger, None, snap.window, estimator=estimator)
    assert res.estimator == estimator
    for metric in ("reward", "error_rate", "latency_ms"):
        d = res.deltas[metric]
        diff = getattr(res.challenger, metric).value - getattr(res.baseline, metric).value
        assert d.value == pytest.approx(diff, abs=1e-9)
        assert d.ci_low < d.value < d.ci_high
        assert d.n == res.task_count


def test_challenger_estimate_matches_hand_computed_ips(snap: LearnerSnapshot) -> None:
    window = snap.window
    chosen = [snap.challenger.best(i.x, i.candidates, i.task_type) for i in window]
    ips = np.mean([i.reward / i.propensity if c == i.route else 0.0 for c, i in zip(chosen, window, strict=True)])
    res = compare(snap.challenger, None, window, estimator="ips")
    assert res.challenger.reward.value == pytest.approx(ips, abs=1e-12)
    matches = sum(c == i.route for c, i in zip(chosen, window, strict=True))
    assert res.challenger_diagnostics.match_rate == pytest.approx(matches / len(window))


def test_slices_per_task_type_add_up_to_the_task_count(snap: LearnerSnapshot) -> None:
    res = compare(snap.challenger, None, snap.window)
    counts = Counter(i.task_type or "unknown" for i in snap.window)
    assert set(res.slices) == set(counts) == {"qa", "coding", "chitchat", "research", "recall", "ambiguous"}
    assert {k: s.task_count for k, s in res.slices.items()} == dict(counts)
    assert sum(s.task_count for s in res.slices.values()) == res.task_count
    for s in res.slices.values():
        assert s.reward_delta.value == pytest.approx(s.challenger_reward.value - s.baseline_reward.value, abs=1e-9)
    # The task-weighted mean of slice deltas is the overall delta.
    weighted = sum(s.task_count * s.reward_delta.value for s in res.slices.values()) / res.task_count
    assert weighted == pytest.approx(res.deltas["reward"].value, abs=1e-9)


def test_benchmark_dict_has_the_contract_fields(snap: LearnerSnapshot) -> None:
    b = compare(snap.challenger, None, snap.window).to_dict()
    assert {"task_count", "estimator", "baseline", "challenger", "slices", "deltas", "diagnostics"} <= set(b)
    for role in ("baseline", "challenger"):
        for metric in ("reward", "error_rate", "latency_ms"):
            assert b[role][f"{metric}_ci_low"] <= b[role][metric] <= b[role][f"{metric}_ci_high"]
    assert b["baseline"]["version_id"] == "logging"


def test_unsupported_routes_are_reported(snap: LearnerSnapshot) -> None:
    res = compare(snap.challenger, None, snap.window, supported_routes={"direct"})
    diag = res.challenger_diagnostics
    assert diag.unsupported_tasks > 0
    assert "direct" not in diag.unsupported_routes
    chosen = [snap.challenger.best(i.x, i.candidates, i.task_type) for i in snap.window]
    assert diag.unsupported_tasks == sum(c != "direct" for c in chosen)


def test_identical_baseline_gives_zero_delta(snap: LearnerSnapshot) -> None:
    res = compare(snap.challenger, snap.challenger.clone(), snap.window)
    for metric in ("reward", "error_rate", "latency_ms"):
        d = res.deltas[metric]
        assert (d.value, d.ci_low, d.ci_high) == (0.0, 0.0, 0.0)


def test_suite_replay_equals_the_exact_mean_of_the_chosen_routes_outcomes(suite: list[SuiteItem]) -> None:
    challenger, baseline = _weak_baseline(), Router(version_id="20250101-000000")  # untrained: picks by name
    res = compare(challenger, baseline, [], suite)
    assert (res.task_count, res.logged_count, res.suite_count) == (300, 0, 300)
    for router, est in ((challenger, res.challenger), (baseline, res.baseline)):
        outs = [s.outcomes[router.choose(s.task, s.candidates).route] for s in suite]
        assert est.reward.value == pytest.approx(np.mean([o.reward for o in outs]), abs=1e-12)
        assert est.error_rate.value == pytest.approx(np.mean([o.error for o in outs]), abs=1e-12)
        assert est.latency_ms.value == pytest.approx(np.mean([o.latency_ms for o in outs]), abs=1e-9)
    assert res.baseline.name == "20250101-000000"
    assert sum(s.task_count for s in res.slices.values()) == 300


def test_logged_and_suite_items_pool_into_one_estimate(snap: LearnerSnapshot, suite: list[SuiteItem]) -> None:
    baseline = _weak_baseline()
    logged_only = compare(snap.challenger, baseline, snap.window)
    suite_only = compare(snap.challenger, baseline, [], suite)
    both = compare(snap.challenger, baseline, snap.window, suite)
    n1, n2 = logged_only.task_count, suite_only.task_count
    assert both.task_count == n1 + n2
    pooled = (n1 * logged_only.challenger.reward.value + n2 * suite_only.challenger.reward.value) / (n1 + n2)
    assert both.challenger.reward.value == pytest.approx(pooled, abs=1e-9)
    assert sum(s.task_count for s in both.slices.values()) == both.task_count


def test_suite_is_skipped_when_the_baseline_is_the_logging_policy(snap: LearnerSnapshot,
                                                                   suite: list[SuiteItem]) -> None:
    res = compare(snap.challenger, None, snap.window, suite)
    assert res.suite_count == 0
    assert res.task_count == len(snap.window)


def test_load_suite_names_file_and_line_of_a_bad_entry(tmp_path: Path) -> None:
    from memabrad.evaluation.benchmark import SuiteFormatError

    path = tmp_path / "suite.jsonl"
    path.write_text('{"task": {"input": "hi"}, "outcomes": {"a": {"reward": 1, "error": false, "latency_ms": 1}}}\n'
                    '{"task": {"input": "hi"}, "candidates": ["a", "b"], '
                    '"outcomes": {"a": {"reward": 1, "error": false, "latency_ms": 1}}}\n')
    with pytest.raises(SuiteFormatError, match=r"suite\.jsonl:2: .*'b'"):
        load_suite(path)


def test_empty_window_gives_nan_estimates_without_crashing() -> None:
    r = Router()
    res = compare(r, None, [])
    assert res.task_count == 0
    assert np.isnan(res.deltas["reward"].value)
    assert res.challenger_diagnostics.effective_sample_size == 0.0


def test_logged_item_state_round_trip() -> None:
    item = LoggedItem("t1", {3: 0.5, 7: -0.25}, ("a", "b"), "b", 0.4, False, 0.9, True, 12.5, "qa")
    assert LoggedItem.from_state(item.to_state()) == item


def test_logged_item_state_keeps_every_feature_exactly_and_reads_the_older_pairs() -> None:
    rng = np.random.default_rng(5)
    x = {int(k): float(v) for k, v in zip(rng.integers(0, 1 << 18, 700), rng.normal(size=700), strict=True)}
    item = LoggedItem("t2", x, ("a",), "a", 1.0, True, -0.5, False, 3.0, None, "~0000abcd")
    back = LoggedItem.from_state(json.loads(json.dumps(item.to_state())))
    assert back == item and list(back.x) == list(x)  # values bit for bit, keys in order
    older = ["t3", [[3, 0.5], [7, -0.25]], ["a", "b"], "b", 0.4, False, 0.9, True, 12.5, "qa"]
    assert LoggedItem.from_state(older) == LoggedItem("t3", {3: 0.5, 7: -0.25}, ("a", "b"), "b", 0.4, False, 0.9,
                                                       True, 12.5, "qa")
