"""Property tests: no input makes the parsers raise anything but their own InvalidMessage subclass.

The daemon's consume loop relies on this: an unexpected exception type would stop
the partition instead of dead-lettering one message.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from memabrad.wire import (
    CODES,
    InvalidAdminCommand,
    InvalidMessage,
    InvalidRouterEvent,
    InvalidTrajectory,
    Trajectory,
    parse_admin_command,
    parse_router_event,
    parse_trajectory,
)

FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

EXAMPLE: dict[str, Any] = {
    "schema_version": 1,
    "trajectory_id": "b3c1e2f0-7d4e-4c35-9a51-0c2b0d6f9e11",
    "router_id": "default",
    "occurred_at": "2026-11-25T17:00:00Z",
    "task": {"input": "How do I speed up this SQL query?", "task_type": "qa", "features": {"tokens": 9}},
    "candidates": ["direct", "tool.web_search", "clarify"],
    "decision": {"route": "tool.web_search", "propensity": 0.8, "router_version": "20261125-170000"},
    "outcome": {"reward": 0.9, "error": False, "latency_ms": 1234.5},
    "steps": [],
}
PATHS = [
    "schema_version", "trajectory_id", "router_id", "occurred_at", "task", "task.input", "task.task_type",
    "task.features", "task.tags", "candidates", "decision", "decision.route", "decision.propensity",
    "decision.router_version", "outcome", "outcome.reward", "outcome.error", "outcome.latency_ms", "steps",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["1", "1.0", "2026-11-25T17:00:00Z", "2026-11-25T17:00:00", "direct", "NaN", ""])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)


def check(raw: Any) -> Trajectory | None:
    """Parse ``raw``: a Trajectory or a well-formed InvalidTrajectory, nothing else."""
    try:
        return parse_trajectory(raw)
    except InvalidTrajectory as err:
        assert err.code in CODES
        assert "\n" not in err.reason and "\r" not in err.reason and len(err.reason) <= 300
        assert "\n" not in err.field and len(err.field) <= 200
        return None


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(st.text(max_size=512))
def test_arbitrary_text(raw: str) -> None:
    check(raw)


@FUZZ
@given(st.dictionaries(st.sampled_from([*PATHS, "extra", "x"]), json_values, max_size=12))
def test_arbitrary_json_objects(doc: dict[str, Any]) -> None:
    check(json.dumps(doc))
    check(json.dumps(doc).encode())


@FUZZ
@given(json_values)
def test_arbitrary_json_values(value: Any) -> None:
    check(json.dumps(value))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values | st.just("__delete__")), max_size=3))
def test_mutated_contract_example(changes: list[tuple[str, Any]]) -> None:
    doc: Any = copy.deepcopy(EXAMPLE)
    for path, value in changes:
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if value == "__delete__":
            node.pop(last, None)
        else:
            node[last] = value
    raw = json.dumps(doc)
    parsed = check(raw)
    # The byte parser and Python-side validation agree on every JSON-representable document.
    standard_json = "NaN" not in raw and "Infinity" not in raw
    if standard_json:
        try:
            via_dict: Trajectory | None = Trajectory.model_validate(json.loads(raw))
        except ValidationError:
            via_dict = None
        assert (parsed is None) == (via_dict is None)
        assert parsed == via_dict
    if parsed is not None:
        assert parse_trajectory(json.dumps(parsed.to_json_dict())) == parsed


@FUZZ
@given(st.binary(max_size=2048) | st.text(max_size=512).map(str.encode))
def test_slicing_a_valid_message(prefix: bytes) -> None:
    raw = json.dumps(EXAMPLE).encode()
    check(prefix + raw)
    check(raw[: len(prefix) % len(raw)])


def _other_parser_only_raises(parser: Any, exc_type: type[InvalidMessage], raw: Any) -> None:
    try:
        parser(raw)
    except exc_type as err:
        assert err.code in CODES and "\n" not in err.reason


@FUZZ
@given(st.binary(max_size=512) | st.dictionaries(st.text(max_size=12), json_values).map(json.dumps))
def test_admin_and_event_parsers_only_raise_their_own_errors(raw: bytes | str) -> None:
    _other_parser_only_raises(parse_admin_command, InvalidAdminCommand, raw)
    _other_parser_only_raises(parse_router_event, InvalidRouterEvent, raw)
