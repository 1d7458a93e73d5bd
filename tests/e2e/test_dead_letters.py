"""Invalid trajectories land in the dead-letter topic unchanged, are counted, and never stop the daemon."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from kafka_harness import DaemonFactory, KafkaIO, Producer, Topics, trajectory_bytes

from memabrad.sim import Simulator

pytestmark = pytest.mark.e2e

ROUTER = "dlq-router"
N_VALID = 400
OVERSIZE_BYTES = 1_100_000  # over the contract's 1 MiB (kafka.max_message_bytes default)


@dataclass(frozen=True)
class Case:
    name: str
    value: bytes
    code: str  # expected memabrad_invalid_trajectories_total reason
    field: str  # expected memabrad-error-field header ("" when not about one field)


def _mutated(row: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> bytes:
    r = copy.deepcopy(row)
    change(r)
    return json.dumps(r).encode("utf-8")  # json.dumps writes NaN for float("nan"): that case is not JSON


def invalid_cases(rows: list[dict[str, Any]]) -> list[Case]:
    """One record per way to be invalid; each rule case breaks exactly one rule of CONTRACT §2."""
    it = iter(rows)

    def m(change: Callable[[dict[str, Any]], None]) -> bytes:
        return _mutated(next(it), change)

    def set_(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def change(r: dict[str, Any]) -> None:
            *parents, last = path.split(".")
            node = r
            for p in parents:
                node = node[p]
            node[last] = value
        return change

    oversize = next(it)
    oversize["steps"] = [{"pad": "x" * OVERSIZE_BYTES}]
    inf_row = next(it)
    inf_feature = trajectory_bytes(inf_row).replace(b'"tokens":', b'"tokens":1e999,"tokens_orig":', 1)
    assert b"1e999" in inf_feature
    return [
        Case("malformed json", b'{"schema_version": 1, "trajectory_id": ', "bad_json", ""),
        Case("not utf-8", b'{"schema_version": 1, "trajectory_id": "\xff\xfe"}', "not_utf8", ""),
        Case("oversize", trajectory_bytes(oversize), "too_large", ""),
        Case("schema_version 2", m(set_("schema_version", 2)), "schema_version", "schema_version"),
        Case("trajectory_id chars", m(set_("trajectory_id", "bad id!")), "bad_value", "trajectory_id"),
        Case("router_id too long", m(set_("router_id", "r" * 65)), "bad_value", "router_id"),
        Case("occurred_at without zone", m(set_("occurred_at", "2026-01-01T00:00:00")), "bad_value", "occurred_at"),
        Case("empty task.input", m(set_("task.input", "")), "bad_value", "task.input"),
        Case("task_type 65 chars", m(set_("task.task_type", "t" * 65)), "bad_value", "task.task_type"),
        Case("257 features", m(set_("task.features", {f"f{i}": i for i in range(257)})), "bad_value",
             "task.features"),
        Case("NaN feature", m(set_("task.features.nan", float("nan"))), "bad_json", ""),
        Case("infinite feature", inf_feature, "bad_value", "task.features.tokens"),
        Case("string feature", m(set_("task.features.s", "1")), "bad_value", "task.features.s"),
        Case("33 tags", m(set_("task.tags", ["t"] * 33)), "bad_value", "task.tags"),
        Case("empty candidates", m(set_("candidates", [])), "bad_value", "candidates"),
        Case("duplicate candidates", m(lambda r: r["candidates"].append(r["candidates"][0])), "bad_value",
             "candidates"),
        Case("bad route chars", m(lambda r: r["candidates"].append("bad route")), "bad_value", "candidates"),
        Case("route not a candidate", m(set_("decision.route", "nowhere")), "bad_value", "decision.route"),
        Case("propensity 0", m(set_("decision.propensity", 0)), "bad_value", "decision.propensity"),
        Case("propensity 1.5", m(set_("decision.propensity", 1.5)), "bad_value", "decision.propensity"),
        Case("reward string", m(set_("outcome.reward", "x")), "bad_value", "outcome.reward"),
        Case("error string", m(set_("outcome.error", "yes")), "bad_value", "outcome.error"),
        Case("negative latency", m(set_("outcome.latency_ms", -1)), "bad_value", "outcome.latency_ms"),
        Case("257 steps", m(set_("steps", [{}] * 257)), "bad_value", "steps"),
    ]


def test_invalid_records_are_dead_lettered(kafka: KafkaIO, daemons: DaemonFactory, producer: Producer) -> None:
    topics = Topics.unique("dlq")
    kafka.create_topics(topics)
    dlq = kafka.dead_letters(topics.dead_letter)
    sim = Simulator(seed=11, router_id=ROUTER)
    valid = sim.generate(N_VALID)
    cases = invalid_cases(sim.generate(40))

    # Interleave: every 15th record is invalid.
    items: list[tuple[bytes, bytes]] = []
    kinds: list[Case | None] = []
    valid_iter = iter(valid)
    pending = list(cases)
    for i in range(N_VALID + len(cases)):
        case = pending.pop(0) if pending and i % 15 == 7 else None
        if case is None:
            row = next(valid_iter, None)
            if row is None:
                case = pending.pop(0)
        kinds.append(case)
        items.append((ROUTER.encode(), case.value if case else trajectory_bytes(row)))
    assert not pending and next(valid_iter, None) is None

    d = daemons.new("dlq", topics).wait_ready()
    sent = producer.send(topics.trajectories, items)
    n_invalid = len(cases)

    status = d.wait_consumed({0: len(items)}, timeout=120)
    letters = dlq.wait_for(lambda rs: rs if len(rs) >= n_invalid else None, 60, f"{n_invalid} dead letters")

    # Each invalid record is in the DLQ exactly once, byte-identical, with its reason and origin.
    by_source: dict[str, list[Any]] = {}
    for rec in letters:
        src = rec.header("memabrad-source")
        assert src is not None, f"dead letter without memabrad-source: {rec}"
        by_source.setdefault(src.decode(), []).append(rec)
    assert len(letters) == n_invalid, f"expected {n_invalid} dead letters, got {len(letters)}"
    for case, (key, value), where in zip(kinds, items, sent, strict=True):
        source = f"{topics.trajectories}:{where.partition}:{where.offset}"
        if case is None:
            assert source not in by_source, f"valid record at {source} was dead-lettered"
            continue
        assert len(by_source.get(source, [])) == 1, f"{case.name}: no single dead letter for {source}"
        rec = by_source[source][0]
        assert rec.value == value, f"{case.name}: dead-letter value differs from the original bytes"
        assert rec.key == key, f"{case.name}: key {rec.key!r} != {key!r}"
        error = rec.header("memabrad-error")
        assert error, f"{case.name}: empty memabrad-error"
        text = error.decode("utf-8")
        assert text.strip() and "\n" not in text and "\r" not in text, f"{case.name}: error not one line: {text!r}"
        err_field = rec.header("memabrad-error-field")
        assert err_field is not None, f"{case.name}: no memabrad-error-field header"
        if case.field:
            assert err_field.decode() == case.field or err_field.decode().startswith(case.field + "."), \
                f"{case.name}: memabrad-error-field {err_field!r}, expected {case.field!r} ({text})"

    # The daemon keeps running, learned the valid ones, and counts the invalid ones exactly.
    assert d.alive and d.http_get("/healthz")[0] == 200
    router = status["routers"][ROUTER]
    assert router["trajectories_learned"] == N_VALID
    assert router["invalid"] == n_invalid
    assert router["duplicates"] == 0
    m = d.metrics()
    assert m.value("memabrad_trajectories_total", router_id=ROUTER, result="accepted") == N_VALID
    assert m.value("memabrad_trajectories_total", router_id=ROUTER, result="invalid") == n_invalid
    assert m.sum("memabrad_trajectories_total", result="invalid") == n_invalid
    assert m.sum("memabrad_invalid_trajectories_total") == n_invalid
    by_reason = {labels["reason"]: v for labels, v in m.find("memabrad_invalid_trajectories_total")}
    assert by_reason == dict(Counter(c.code for c in cases))
