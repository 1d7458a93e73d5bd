"""The quality benchmark's workloads added for agents that route on numbers or write in other scripts."""

from __future__ import annotations

import json

from bench_modules import bench_module

from memabrad.wire.parse import parse_trajectory


def test_the_classification_and_embedding_workloads_log_valid_trajectories_with_exact_truth() -> None:
    with bench_module("quality.py") as q:
        for w in (q.classes_workload("wine", 1), q.embed_workload(1, 300)):
            rows = list(w.stream(200))
            assert len(rows) == 200 and len({r["trajectory_id"] for r in rows}) == 200
            for r in rows:
                t = parse_trajectory(json.dumps(r).encode())
                assert t.task.features and round(t.decision.propensity, 9) in {0.775, 0.075, 0.8, 0.1}
            assert 0.0 < w.logging.value < w.best_single[1].value < w.oracle.value <= 1.0
            first = rows[0]["task"]
            assert w.value(lambda task, _c, first=first: "r0" if "e0" in task["features"] else "class-0").value >= 0


def test_the_cyrillic_view_keeps_the_words_and_the_truth() -> None:
    with bench_module("quality.py") as q:
        w = q.helpdesk_workload(1, 200)
        c = q.cyrillic(w)
        plain, other = next(w.stream(1)), next(c.stream(1))
        assert other["task"]["input"] == plain["task"]["input"].translate(q.CYRILLIC)
        assert not any("a" <= ch <= "z" for ch in other["task"]["input"].lower())
        assert len(other["task"]["input"].split()) == len(plain["task"]["input"].split())

        def policy(task: dict, _c: list[str]) -> str:
            return "answer.direct" if task["input"].isascii() else "tool.kb_search"

        assert c.value(policy).value == w.value(lambda _t, _c: "tool.kb_search").value


def test_a_learned_policy_is_judged_with_the_hints_it_is_served_with() -> None:
    """The benchmark's policy chooses what ``Router.choose`` serves, case-index hint included: a task with
    numbers is keyed by them, and a lookup by its text alone found no hint (every numeric workload was
    judged without the hints it is served with)."""
    from memabrad.config import Config
    from memabrad.learning.learner import RouterLearner

    with bench_module("quality.py") as q:
        w = q.classes_workload("wine", 1)
        learner = RouterLearner.new(w.router_id, Config())
        rows = list(w.stream(3000))
        for r in rows:
            learner.observe(parse_trajectory(json.dumps(r).encode()))
        served = learner.challenger
        served.case_index = learner.case_index
        judged = q.memabrad_policy(learner)
        tasks = [r["task"] for r in rows[:300]]
        cands = rows[0]["candidates"]
        hinted = [served.choose(t, cands).hint for t in tasks]
        assert sum(h is not None and h.exact for h in hinted) > 250  # seen before: their own case's route
        assert [judged(t, cands) for t in tasks] == [served.choose(t, cands).route for t in tasks]


def test_a_multi_label_dataset_rewards_every_right_class_and_values_policies_exactly() -> None:
    """river's yeast: an example has several right classes (as where several tools would each do); the log
    rewards a route iff its class is one of them, and the truth counts a choice right the same way."""
    with bench_module("quality.py") as q:
        w = q.classes_workload("yeast", 1)
        xs, names, right, labels, _src = q._class_data("yeast")
        assert len(labels) == 14 and any(len(r) > 1 for r in right)
        rows = list(w.stream(500))
        routes = rows[0]["candidates"]
        assert routes == [f"class-{c}" for c in labels]
        by_numbers = {tuple(float(v) for v in x): r for x, r in zip(xs, right, strict=True)}
        for row in rows:
            t = parse_trajectory(json.dumps(row).encode())
            ok = by_numbers[tuple(t.task.features[n] for n in names)]
            assert t.outcome.reward == (1.0 if routes.index(t.decision.route) in ok else 0.0)
        best, value = w.best_single
        assert w.value(lambda _t, _c: best).value == value.value > w.logging.value
        assert w.oracle.value == 1.0  # every example has a right class


def test_every_bundled_classification_dataset_loads_as_a_bandit() -> None:
    with bench_module("quality.py") as q:
        for name in (*q.CLASS_DATASETS, *q.PROBE_RIVER_CLASSES):
            w = q.classes_workload(name, 2)
            row = next(w.stream(1))
            parse_trajectory(json.dumps(row).encode())
            assert 0.0 < w.logging.value <= w.best_single[1].value < w.oracle.value == 1.0, name


def test_the_synthetic_probes_load_as_bandits_with_valid_trajectories() -> None:
    """River's synthetic streams (binary segments, raw scales, category codes) as bandits: a fixed pool each,
    every logged trajectory valid, truth exact and between logging and the oracle."""
    with bench_module("quality.py") as q:
        for name in q.SYNTH_CLASSES:
            w = q.classes_workload(name, 1)
            rows = list(w.stream(50))
            for r in rows:
                assert parse_trajectory(json.dumps(r).encode()).task.features
            assert 0.0 < w.logging.value <= w.best_single[1].value < w.oracle.value == 1.0
            assert str(q.SYNTH_POOL) in w.meta["truth"].replace(",", "")


def test_the_tool_desk_logs_valid_trajectories_with_exact_propensities_and_truth() -> None:
    from memabrad.sim.tools import GENERAL, ROUTES, expected_reward, logging_probability

    with bench_module("quality.py") as q:
        w = q.tools_workload(1, 400)
        rows = list(w.stream(3000))
        assert len({r["trajectory_id"] for r in rows}) == 3000
        for r in rows[:300]:
            t = parse_trajectory(json.dumps(r).encode())
            assert not t.task.task_type and not t.task.features
            assert t.decision.propensity == round(logging_probability(t.decision.route), 12)
        assert abs(sum(logging_probability(r) for r in ROUTES) - 1.0) < 1e-12
        share = sum(r["decision"]["route"] == GENERAL for r in rows) / len(rows)
        assert abs(share - logging_probability(GENERAL)) < 0.03
        # a tool is right for its intent only; the per-intent oracle beats the best single route
        assert expected_reward("weather", "tool/weather") > expected_reward("weather", GENERAL)
        assert expected_reward("chitchat", "tool/weather") < expected_reward("chitchat", GENERAL)
        assert w.logging.value < w.best_single[1].value < w.oracle.value <= 1.0
        assert w.best_single[0] == GENERAL


def test_the_best_policy_within_the_guardrails_keeps_them_and_is_bounded_by_the_oracle() -> None:
    """Where the best routes cost errors and latency, the benchmark states what a promotable router could reach:
    a policy inside the promotion allowances over the logging agent (and inside half of them)."""
    from memabrad.config import Config

    gates = Config().promotion
    with bench_module("quality.py") as q:
        w = q.numeric_workload("guarded", 1, 600)
        full, half = w.meta["best_within_guardrails"], w.meta["best_within_half_guardrails"]
        log = w.logging.extra
        assert full["error_rate"] <= log["error_rate"] + gates.max_error_rate_increase + 1e-9
        assert full["latency_ms"] <= log["latency_ms"] + gates.max_latency_increase_ms + 1e-6
        assert half["latency_ms"] <= log["latency_ms"] + gates.max_latency_increase_ms / 2 + 1e-6
        assert w.logging.value < half["value"] <= full["value"] < w.oracle.value
        assert "best_within_guardrails" not in q.numeric_workload("tokens", 1, 200).meta  # no outcome model


def test_the_sources_probe_is_a_text_bandit_over_every_source_with_exact_truth(tmp_path, monkeypatch) -> None:
    """pareto's prompts as a classification bandit (``--workloads sources``): a route per source, including a source
    only the held-out prompts have; reward 1 for the prompt's own source; untyped; exact accuracy as truth."""
    import zipfile

    def prompt(source: str, k: int) -> str:
        return json.dumps({"prompt": f"{source} few-shot opening question {k}", "source": source, "arms": {}})

    wheel = tmp_path / "pareto_bandit-0.1.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pareto_bandit/data/examples/val.jsonl",
                   "\n".join([prompt("mmlu", k) for k in range(6)] + [prompt("gsm8k", k) for k in range(3)]))
        z.writestr("pareto_bandit/data/examples/test_holdout.jsonl",
                   "\n".join([prompt("mmlu", 9), prompt("gsm8k", 9), prompt("bbh/navigate", 9)]))
    with bench_module("quality.py") as q:
        monkeypatch.setattr(q, "fetch", lambda *_a, **_k: wheel)
        w = q.sources_workload(1, tmp_path)
        rows = list(w.stream(300))
        routes = rows[0]["candidates"]
        assert routes == ["src/bbh/navigate", "src/gsm8k", "src/mmlu"]
        for r in rows:
            t = parse_trajectory(json.dumps(r).encode())
            assert not t.task.task_type
            own = "src/" + r["task"]["input"].split()[0]
            assert t.outcome.reward == (1.0 if t.decision.route == own else 0.0)
        assert sum(r["decision"]["route"] == "src/mmlu" for r in rows) > 200  # 70 % + a third of the rest
        assert w.best_single == ("src/mmlu", q.Value(1 / 3))
        assert w.value(lambda task, _c: "src/" + task["input"].split()[0]).value == 1.0 == w.oracle.value
        assert abs(w.logging.value - (0.8 + 0.1 + 0.1) / 3) < 1e-12
