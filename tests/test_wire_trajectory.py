"""Trajectory event v1: one case per rule of CONTRACT §2, valid and invalid, plus whole-message checks."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from memabrad.wire import CODES, InvalidTrajectory, Trajectory, parse_trajectory

EXAMPLE: dict[str, Any] = {
    "schema_version": 1,
    "trajectory_id": "b3c1e2f0-7d4e-4c35-9a51-0c2b0d6f9e11",
    "router_id": "default",
    "occurred_at": "2026-11-25T17:00:00Z",
    "task": {
        "input": "How do I speed up this SQL query on orders?",
        "task_type": "qa",
        "features": {"tokens": 9, "has_code": 0},
        "tags": ["sql"],
    },
    "candidates": ["direct", "memory.episodic", "memory.semantic", "tool.web_search", "clarify"],
    "decision": {"route": "tool.web_search", "propensity": 0.8, "router_version": "20261125-170000"},
    "outcome": {"reward": 0.9, "error": False, "latency_ms": 1234.5},
    "steps": [],
}

DELETE = object()


def mutate(path: str, value: Any) -> dict[str, Any]:
    """The contract example with the dotted ``path`` set to ``value`` (or removed with ``DELETE``)."""
    doc = copy.deepcopy(EXAMPLE)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode("utf-8")


def invalid(raw: bytes | str, **kwargs: Any) -> InvalidTrajectory:
    with pytest.raises(InvalidTrajectory) as info:
        parse_trajectory(raw, **kwargs)
    err = info.value
    assert err.code in CODES
    assert "\n" not in err.reason and "\r" not in err.reason and len(err.reason) <= 300
    assert "\n" not in err.field
    return err


def test_contract_example_parses() -> None:
    t = parse_trajectory(encode(EXAMPLE))
    assert t.trajectory_id == EXAMPLE["trajectory_id"]
    assert t.router_id == "default"
    assert t.occurred_at == datetime(2026, 11, 25, 17, tzinfo=UTC)
    assert t.task.features == {"tokens": 9.0, "has_code": 0.0}
    assert t.task.tags == ["sql"]
    assert t.decision.route == "tool.web_search"
    assert t.decision.propensity == 0.8
    assert t.decision.router_version == "20261125-170000"
    assert t.outcome.reward == 0.9 and t.outcome.error is False and t.outcome.latency_ms == 1234.5
    assert t.steps == []


def test_str_bytearray_and_memoryview_inputs() -> None:
    raw = encode(EXAMPLE)
    expected = parse_trajectory(raw)
    assert parse_trajectory(raw.decode()) == expected
    assert parse_trajectory(bytearray(raw)) == expected
    assert parse_trajectory(memoryview(raw)) == expected


@pytest.mark.parametrize(
    ("path", "value"),
    [
        # router_id: optional, default "default", 1-64 chars of [A-Za-z0-9._-]
        ("router_id", DELETE),
        ("router_id", None),
        ("router_id", "r" * 64),
        ("router_id", "team-a.router_2"),
        # trajectory_id: 1-128 chars of [A-Za-z0-9._:-]
        ("trajectory_id", "t"),
        ("trajectory_id", "a" * 128),
        ("trajectory_id", "src:1.2_3-x"),
        # occurred_at: RFC 3339 with a zone
        ("occurred_at", "2026-11-25T17:00:00+02:00"),
        ("occurred_at", "2026-11-25T17:00:00.123456-05:30"),
        ("occurred_at", "2026-11-25t17:00:00z"),
        ("occurred_at", "2026-11-25 17:00:00Z"),
        # task.input: 1-16384 chars (characters, not bytes)
        ("task.input", "x"),
        ("task.input", "x" * 16384),
        ("task.input", "é" * 16384),
        # task.task_type: optional, <= 64 chars
        ("task.task_type", DELETE),
        ("task.task_type", None),
        ("task.task_type", "t" * 64),
        # task.features: optional, <= 256 entries, keys <= 64 chars, finite numbers
        ("task.features", DELETE),
        ("task.features", None),
        ("task.features", {}),
        ("task.features", {f"f{i}": i for i in range(256)}),
        ("task.features", {"k" * 64: -1.5e300}),
        # task.tags: optional list of <= 32 strings
        ("task.tags", DELETE),
        ("task.tags", None),
        ("task.tags", [f"t{i}" for i in range(32)]),
        # candidates: 1-64 unique names of [A-Za-z0-9._:/-], each 1-128 chars
        ("candidates", ["tool.web_search"]),
        ("candidates", ["tool.web_search"] + [f"c{i}" for i in range(63)]),
        ("candidates", ["tool.web_search", "tool:mcp/github-search_v2", "c" * 128]),
        # decision.propensity: optional, 0 < p <= 1
        ("decision.propensity", DELETE),
        ("decision.propensity", None),
        ("decision.propensity", 1),
        ("decision.propensity", 1e-12),
        # decision.router_version: optional
        ("decision.router_version", DELETE),
        ("decision.router_version", None),
        # outcome.reward: finite number (range only recommended)
        ("outcome.reward", -3),
        ("outcome.reward", 7.5),
        # outcome.error: boolean
        ("outcome.error", True),
        # outcome.latency_ms: finite number >= 0
        ("outcome.latency_ms", 0),
        ("outcome.latency_ms", 12),
        # steps: optional list <= 256 objects, opaque
        ("steps", DELETE),
        ("steps", None),
        ("steps", [{"tool": "x", "nested": {"a": [1, 2.5, None, "NaN"], "big": 10**30}}] * 256),
    ],
)
def test_valid_variants(path: str, value: Any) -> None:
    parse_trajectory(encode(mutate(path, value)))


def test_defaults_and_null_normalisation() -> None:
    doc = mutate("router_id", DELETE)
    doc["task"] = {"input": "hi", "task_type": None, "features": None, "tags": None}
    doc["decision"] = {"route": "direct"}
    doc["steps"] = None
    t = parse_trajectory(encode(doc))
    assert t.router_id == "default"
    assert t.task.task_type is None and t.task.features == {} and t.task.tags == []
    assert t.decision.propensity is None and t.decision.router_version is None
    assert t.steps == []


def test_missing_propensity_is_allowed_and_unknown() -> None:
    t = parse_trajectory(encode(mutate("decision.propensity", DELETE)))
    assert t.decision.propensity is None


def test_extra_fields_are_ignored_everywhere() -> None:
    doc = copy.deepcopy(EXAMPLE)
    doc["producer"] = {"name": "agent", "v": 3}
    doc["task"]["embedding"] = [0.1, 0.2]
    doc["decision"]["scores"] = {"direct": 0.1}
    doc["outcome"]["cost_usd"] = 0.002
    t = parse_trajectory(encode(doc))
    assert t == parse_trajectory(encode(EXAMPLE))
    assert "producer" not in t.to_json_dict()


def test_steps_are_kept_opaque() -> None:
    steps = [{"type": "tool_call", "args": {"q": "sql"}, "ok": True}, {}]
    assert parse_trajectory(encode(mutate("steps", steps))).steps == steps


INVALID_CASES: list[tuple[str, Any, str, str]] = [
    # (path, value, expected field, expected code)
    # schema_version: required, 1
    ("schema_version", DELETE, "schema_version", "schema_version"),
    ("schema_version", 2, "schema_version", "schema_version"),
    ("schema_version", 0, "schema_version", "schema_version"),
    ("schema_version", "1", "schema_version", "schema_version"),
    ("schema_version", 1.0, "schema_version", "schema_version"),
    ("schema_version", True, "schema_version", "schema_version"),
    ("schema_version", None, "schema_version", "schema_version"),
    # trajectory_id: required, 1-128 chars of [A-Za-z0-9._:-]
    ("trajectory_id", DELETE, "trajectory_id", "missing_field"),
    ("trajectory_id", "", "trajectory_id", "bad_value"),
    ("trajectory_id", "a" * 129, "trajectory_id", "bad_value"),
    ("trajectory_id", "a b", "trajectory_id", "bad_value"),
    ("trajectory_id", "a/b", "trajectory_id", "bad_value"),
    ("trajectory_id", "é", "trajectory_id", "bad_value"),
    ("trajectory_id", "abc\n", "trajectory_id", "bad_value"),
    ("trajectory_id", 123, "trajectory_id", "bad_value"),
    ("trajectory_id", None, "trajectory_id", "bad_value"),
    # router_id: optional, 1-64 chars of [A-Za-z0-9._-]
    ("router_id", "", "router_id", "bad_value"),
    ("router_id", "r" * 65, "router_id", "bad_value"),
    ("router_id", "a:b", "router_id", "bad_value"),
    ("router_id", "a/b", "router_id", "bad_value"),
    ("router_id", 7, "router_id", "bad_value"),
    # occurred_at: required, RFC 3339 with a zone
    ("occurred_at", DELETE, "occurred_at", "missing_field"),
    ("occurred_at", "2026-11-25T17:00:00", "occurred_at", "bad_value"),
    ("occurred_at", "2026-11-25T17:00:00.5", "occurred_at", "bad_value"),
    ("occurred_at", 1764090000, "occurred_at", "bad_value"),
    ("occurred_at", 1764090000.5, "occurred_at", "bad_value"),
    ("occurred_at", "1764090000", "occurred_at", "bad_value"),
    ("occurred_at", "2026-11-25", "occurred_at", "bad_value"),
    ("occurred_at", "2026-02-30T17:00:00Z", "occurred_at", "bad_value"),
    ("occurred_at", "2026-11-25T17:00:00+0200", "occurred_at", "bad_value"),
    ("occurred_at", "yesterday", "occurred_at", "bad_value"),
    ("occurred_at", None, "occurred_at", "bad_value"),
    # task.input: required string, 1-16384 chars
    ("task", DELETE, "task", "missing_field"),
    ("task", ["input"], "task", "bad_value"),
    ("task.input", DELETE, "task.input", "missing_field"),
    ("task.input", "", "task.input", "bad_value"),
    ("task.input", "x" * 16385, "task.input", "bad_value"),
    ("task.input", 5, "task.input", "bad_value"),
    ("task.input", None, "task.input", "bad_value"),
    # task.task_type: optional string <= 64 chars
    ("task.task_type", "t" * 65, "task.task_type", "bad_value"),
    ("task.task_type", 3, "task.task_type", "bad_value"),
    # task.features: optional object, <= 256 entries, string keys <= 64 chars, finite numbers
    ("task.features", {f"f{i}": i for i in range(257)}, "task.features", "bad_value"),
    ("task.features", {"k" * 65: 1}, "task.features." + "k" * 65 + ".[key]", "bad_value"),
    ("task.features", {"x": True}, "task.features.x", "bad_value"),
    ("task.features", {"x": "1.0"}, "task.features.x", "bad_value"),
    ("task.features", {"x": None}, "task.features.x", "bad_value"),
    ("task.features", {"x": [1]}, "task.features.x", "bad_value"),
    ("task.features", {"x": float("nan")}, "", "bad_json"),  # json.dumps writes NaN: not JSON
    ("task.features", [1, 2], "task.features", "bad_value"),
    # task.tags: optional list of <= 32 strings
    ("task.tags", [f"t{i}" for i in range(33)], "task.tags", "bad_value"),
    ("task.tags", [1], "task.tags.0", "bad_value"),
    ("task.tags", "sql", "task.tags", "bad_value"),
    # candidates: required, 1-64 unique route names, each 1-128 chars of [A-Za-z0-9._:/-]
    ("candidates", DELETE, "candidates", "missing_field"),
    ("candidates", [], "candidates", "bad_value"),
    ("candidates", ["tool.web_search"] + [f"c{i}" for i in range(64)], "candidates", "bad_value"),
    ("candidates", ["tool.web_search", "direct", "direct"], "candidates", "bad_value"),
    ("candidates", ["tool.web_search", ""], "candidates.1", "bad_value"),
    ("candidates", ["tool.web_search", "c" * 129], "candidates.1", "bad_value"),
    ("candidates", ["tool.web_search", "a b"], "candidates.1", "bad_value"),
    ("candidates", ["tool.web_search", 3], "candidates.1", "bad_value"),
    ("candidates", "tool.web_search", "candidates", "bad_value"),
    # decision.route: required, one of candidates
    ("decision", DELETE, "decision", "missing_field"),
    ("decision.route", DELETE, "decision.route", "missing_field"),
    ("decision.route", "not.offered", "decision.route", "bad_value"),
    ("decision.route", 1, "decision.route", "bad_value"),
    # decision.propensity: optional, 0 < p <= 1
    ("decision.propensity", 0, "decision.propensity", "bad_value"),
    ("decision.propensity", -0.1, "decision.propensity", "bad_value"),
    ("decision.propensity", 1.0001, "decision.propensity", "bad_value"),
    ("decision.propensity", "0.5", "decision.propensity", "bad_value"),
    ("decision.propensity", True, "decision.propensity", "bad_value"),
    # decision.router_version: optional string
    ("decision.router_version", 20261125, "decision.router_version", "bad_value"),
    # outcome.reward: required finite number
    ("outcome", DELETE, "outcome", "missing_field"),
    ("outcome.reward", DELETE, "outcome.reward", "missing_field"),
    ("outcome.reward", "0.9", "outcome.reward", "bad_value"),
    ("outcome.reward", True, "outcome.reward", "bad_value"),
    ("outcome.reward", None, "outcome.reward", "bad_value"),
    ("outcome.reward", float("inf"), "", "bad_json"),
    ("outcome.reward", float("-inf"), "", "bad_json"),
    ("outcome.reward", float("nan"), "", "bad_json"),
    # outcome.error: required boolean
    ("outcome.error", DELETE, "outcome.error", "missing_field"),
    ("outcome.error", 0, "outcome.error", "bad_value"),
    ("outcome.error", "false", "outcome.error", "bad_value"),
    ("outcome.error", None, "outcome.error", "bad_value"),
    # outcome.latency_ms: required finite number >= 0
    ("outcome.latency_ms", DELETE, "outcome.latency_ms", "missing_field"),
    ("outcome.latency_ms", -1, "outcome.latency_ms", "bad_value"),
    ("outcome.latency_ms", "5", "outcome.latency_ms", "bad_value"),
    ("outcome.latency_ms", float("inf"), "", "bad_json"),
    # steps: optional list (<= 256 items) of objects
    ("steps", [{}] * 257, "steps", "bad_value"),
    ("steps", [1], "steps.0", "bad_value"),
    ("steps", ["x"], "steps.0", "bad_value"),
    ("steps", {"a": 1}, "steps", "bad_value"),
]


@pytest.mark.parametrize(("path", "value", "field", "code"), INVALID_CASES)
def test_invalid_variants(path: str, value: Any, field: str, code: str) -> None:
    err = invalid(encode(mutate(path, value)))
    assert (err.field, err.code) == (field, code)
    assert err.reason.startswith(err.field[:50])


@pytest.mark.parametrize(("path", "value", "field", "code"), INVALID_CASES)
def test_model_validate_applies_the_same_rules(path: str, value: Any, field: str, code: str) -> None:
    """Files parsed into dicts and Python callers get the same strictness as the byte parser."""
    with pytest.raises(ValidationError):
        Trajectory.model_validate(mutate(path, value))


def test_reasons_are_readable() -> None:
    err = invalid(encode(mutate("candidates", ["tool.web_search", "a", "a"])))
    assert err.reason == "candidates: route names must be unique"
    err = invalid(encode(mutate("decision.route", "elsewhere")))
    assert err.reason == "decision.route: must be one of candidates"
    err = invalid(encode(mutate("task.input", DELETE)))
    assert err.reason == "task.input: required field is missing"


@pytest.mark.parametrize("path", ["task.features.x", "outcome.reward", "outcome.latency_ms"])
def test_numbers_overflowing_to_infinity_are_not_finite(path: str) -> None:
    doc = mutate("task.features", {"x": 1}) if path.startswith("task.") else copy.deepcopy(EXAMPLE)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[part]
    node[last] = "OVERFLOW"
    for number in (b"1e400", b"-1e400", b"9" * 400):
        err = invalid(encode(doc).replace(b'"OVERFLOW"', number))
        assert (err.field, err.code) == (path, "bad_value")


def test_nan_inside_opaque_steps_is_not_json() -> None:
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        raw = encode(mutate("steps", [{"x": "PLACEHOLDER"}])).replace(b'"PLACEHOLDER"', token)
        err = invalid(raw)
        assert (err.code, err.field) == ("bad_json", "")


def test_nan_token_inside_a_string_is_fine() -> None:
    parse_trajectory(encode(mutate("task.input", "NaN and Infinity are words")))


def test_oversize_message_is_too_large() -> None:
    raw = encode(mutate("steps", [{"pad": "x" * 1_100_000}]))
    assert invalid(raw).code == "too_large"
    assert invalid(raw.decode()).code == "too_large"
    small = encode(EXAMPLE)
    assert parse_trajectory(small, max_bytes=len(small)).trajectory_id
    assert invalid(small, max_bytes=len(small) - 1).code == "too_large"


def test_size_counts_utf8_bytes_for_str_input() -> None:
    text = json.dumps(mutate("task.input", "é" * 100), ensure_ascii=False)
    limit = len(text) + 50  # enough characters, too few bytes
    assert invalid(text, max_bytes=limit).code == "too_large"


def test_size_is_checked_before_utf8_and_json() -> None:
    assert invalid(b"\xff" * 20, max_bytes=10).code == "too_large"


def test_non_utf8_bytes() -> None:
    raw = encode(EXAMPLE).replace(b"orders", b"ord\xffrs")
    err = invalid(raw)
    assert (err.code, err.field) == ("not_utf8", "")
    assert invalid(b"\xc3\x28").code == "not_utf8"


def test_lone_surrogate_str_is_not_utf8() -> None:
    assert invalid('{"a": "\ud800"}').code == "not_utf8"


def test_utf8_is_checked_before_json() -> None:
    assert invalid(b"{not json \xff").code == "not_utf8"


@pytest.mark.parametrize(
    "raw",
    [b"", b"   ", b"{", b'{"schema_version": 1,}', b"{'a': 1}", b'{"a": 1} trailing', b"\xef\xbb\xbf{}", b"nul"],
)
def test_malformed_json(raw: bytes) -> None:
    err = invalid(raw)
    assert (err.code, err.field) == ("bad_json", "")


@pytest.mark.parametrize("raw", [b"[]", b"[1, 2]", b"1", b"1.5", b'"text"', b"null", b"true"])
def test_top_level_must_be_an_object(raw: bytes) -> None:
    err = invalid(raw)
    assert (err.code, err.field) == ("not_object", "")


@pytest.mark.parametrize("raw", [None, 42, 1.5, ["x"], {"schema_version": 1}])
def test_non_bytes_input_raises_invalid_trajectory(raw: Any) -> None:
    invalid(raw)


def test_schema_version_is_reported_before_other_problems() -> None:
    err = invalid(b'{"schema_version": 2, "something": "else"}')
    assert (err.field, err.code) == ("schema_version", "schema_version")


def test_reason_and_field_are_one_line_and_bounded() -> None:
    key = "bad\nkey\r" + "k" * 400
    err = invalid(encode(mutate("task.features", {key: 1})))
    assert err.code == "bad_value"
    assert len(err.reason) <= 300 and len(err.field) <= 200


def test_to_json_dict_round_trips() -> None:
    t = parse_trajectory(encode(mutate("occurred_at", "2026-11-25T18:30:00.250+01:30")))
    d = t.to_json_dict()
    assert d["occurred_at"] == "2026-11-25T18:30:00.250000+01:30"
    assert json.loads(json.dumps(d)) == d
    again = parse_trajectory(json.dumps(d))
    assert again == t
    assert again.occurred_at.utcoffset() == timedelta(hours=1, minutes=30)


def test_models_are_frozen() -> None:
    t = parse_trajectory(encode(EXAMPLE))
    with pytest.raises(ValidationError):
        t.trajectory_id = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        t.decision.route = "direct"  # type: ignore[misc]


def test_python_callers_may_pass_aware_datetimes_but_not_naive_ones() -> None:
    doc = mutate("occurred_at", datetime(2026, 11, 25, 17, tzinfo=UTC))
    assert Trajectory.model_validate(doc).occurred_at.tzinfo is not None
    with pytest.raises(ValidationError):
        Trajectory.model_validate(mutate("occurred_at", datetime(2026, 11, 25, 17)))
