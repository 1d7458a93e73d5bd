"""Router event v1 (CONTRACT §3): models round-trip through bytes and ids are deterministic."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from memabrad.wire import (
    EVENT_TYPES,
    AdminApplied,
    AdminRejected,
    Benchmark,
    GateResult,
    InvalidRouterEvent,
    RouterEvaluated,
    RouterEventBase,
    RouterPromoted,
    RouterRejected,
    RouterRolledBack,
    event_to_bytes,
    make_event_id,
    parse_router_event,
)

WHEN = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
GATES: dict[str, Any] = {
    "reward_delta": {"value": 0.04, "threshold": 0.02, "passed": True},
    "error_rate_delta": {"value": -0.01, "threshold": 0.01, "passed": True},
    "latency_delta_ms": {"value": 12.0, "threshold": 50.0, "passed": True},
    "task_count": {"value": 500, "threshold": 200, "passed": True, "note": "extra kept"},
}
BENCHMARK: dict[str, Any] = {
    "task_count": 500,
    "estimator": "snips",
    "baseline": {"reward": 0.61, "error_rate": 0.05, "latency_ms": 900.0, "reward_ci_low": 0.58},
    "challenger": {"reward": 0.65, "error_rate": 0.04, "latency_ms": 912.0, "reward_ci_high": 0.69},
}


def common(kind: str, *key: str) -> dict[str, Any]:
    return {"event_id": make_event_id("default", kind, *key), "router_id": "default", "occurred_at": WHEN}


def all_events() -> list[RouterEventBase]:
    return [
        RouterPromoted(
            **common("router.promoted", "v2"),
            version_id="20261125-170000",
            previous_version_id=None,
            report_id="rep-1",
            gates=GATES,
            benchmark=BENCHMARK,
        ),
        RouterRejected(
            **common("router.rejected", "rep-2"),
            report_id="rep-2",
            verdict="inconclusive",
            reasons=["reward CI overlaps zero"],
            gates=GATES,
            benchmark=BENCHMARK,
        ),
        RouterEvaluated(
            **common("router.evaluated", "rep-3"),
            report_id="rep-3",
            would_promote=True,
            gates=GATES,
            benchmark=BENCHMARK,
        ),
        RouterRolledBack(
            **common("router.rolled_back", "r-42"),
            version_id="20261125-160000",
            previous_version_id="20261125-170000",
            trigger="admin",
            request_id="r-42",
            requested_by="oncall@example.com",
            reason="reward dropped",
        ),
        AdminApplied(**common("admin.applied", "r-43"), request_id="r-43", command="pause_promotions"),
        AdminRejected(**common("admin.rejected", "r-44"), request_id=None, command=None, reason="bad signature"),
    ]


@pytest.mark.parametrize("event", all_events(), ids=lambda e: e.type)
def test_round_trip_through_bytes(event: RouterEventBase) -> None:
    raw = event_to_bytes(event)
    assert isinstance(raw, bytes)
    back = parse_router_event(raw)
    assert type(back) is type(event)
    assert back == event
    assert parse_router_event(raw.decode()) == event
    doc = json.loads(raw)
    assert doc["schema_version"] == 1
    assert doc["type"] == event.type
    assert doc["occurred_at"] == "2026-11-25T17:00:00Z"
    assert event_to_bytes(back) == raw


def test_every_type_has_a_model() -> None:
    assert set(EVENT_TYPES) == {e.type for e in all_events()}
    assert set(EVENT_TYPES) == {
        "router.promoted",
        "router.rejected",
        "router.evaluated",
        "router.rolled_back",
        "admin.applied",
        "admin.rejected",
    }


def test_bytes_are_compact_and_keep_nulls() -> None:
    promoted = all_events()[0]
    raw = event_to_bytes(promoted)
    assert b'"previous_version_id":null' in raw
    assert b", " not in raw and b'": ' not in raw
    rejected = json.loads(event_to_bytes(all_events()[5]))
    assert rejected["request_id"] is None and rejected["command"] is None


def test_evaluated_is_always_a_dry_run() -> None:
    assert json.loads(event_to_bytes(all_events()[2]))["dry_run"] is True
    with pytest.raises(ValidationError):
        RouterEvaluated(
            **common("router.evaluated", "x"),
            report_id="x",
            would_promote=False,
            gates=GATES,
            benchmark=BENCHMARK,
            dry_run=False,
        )


def test_gates_and_benchmark_keep_extras_and_act_like_dicts() -> None:
    event = parse_router_event(event_to_bytes(all_events()[0]))
    assert isinstance(event, RouterPromoted)
    gate = event.gates["task_count"]
    assert isinstance(gate, GateResult)
    assert gate["passed"] is True and gate.get("note") == "extra kept" and gate.get("nope", 3) == 3
    assert isinstance(event.benchmark, Benchmark)
    assert event.benchmark["baseline"]["reward_ci_low"] == 0.58
    assert event.benchmark.challenger.get("reward_ci_high") == 0.69
    assert event.benchmark.to_dict()["estimator"] == "snips"
    with pytest.raises(KeyError):
        event.benchmark["missing"]


def test_required_gates_are_enforced() -> None:
    gates = {k: v for k, v in GATES.items() if k != "latency_delta_ms"}
    with pytest.raises(ValidationError, match="latency_delta_ms"):
        RouterEvaluated(
            **common("router.evaluated", "x"), report_id="x", would_promote=False, gates=gates, benchmark=BENCHMARK
        )


def test_non_finite_numbers_are_published_as_null() -> None:
    gates = {**GATES, "latency_delta_ms": {"value": 3.0, "threshold": float("inf"), "passed": True}}
    event = RouterEvaluated(
        **common("router.evaluated", "x"), report_id="x", would_promote=True, gates=gates, benchmark=BENCHMARK
    )
    raw = event_to_bytes(event)
    assert json.loads(raw)["gates"]["latency_delta_ms"]["threshold"] is None
    assert parse_router_event(raw) == event


def test_extra_event_fields_survive_a_round_trip() -> None:
    event = AdminApplied(**common("admin.applied", "r-1"), request_id="r-1", command="pin_baseline", version_id="v1")
    assert json.loads(event_to_bytes(event))["version_id"] == "v1"
    assert parse_router_event(event_to_bytes(event)) == event


def test_make_event_id_is_deterministic_and_key_sensitive() -> None:
    first = make_event_id("default", "router.promoted", "20261125-170000", "rep-1")
    assert first == make_event_id("default", "router.promoted", "20261125-170000", "rep-1")
    assert uuid.UUID(first).version == 5
    assert first != make_event_id("other", "router.promoted", "20261125-170000", "rep-1")
    assert first != make_event_id("default", "router.rejected", "20261125-170000", "rep-1")
    assert first != make_event_id("default", "router.promoted", "20261125-170001", "rep-1")
    assert make_event_id("a", "t", "b", "c") != make_event_id("a", "t", "b:c")
    assert make_event_id("a", "t", "b,c") != make_event_id("a", "t", "b", "c")


def test_make_event_id_is_stable_across_releases() -> None:
    """Pinned: changing the scheme would break consumers' dedupe of re-published events."""
    expected = "2ff96460-c8e5-585e-a6a1-897a426a0315"
    assert make_event_id("default", "router.promoted", "20261125-170000") == expected


@pytest.mark.parametrize(
    ("raw", "field", "code"),
    [
        (b"not json", "", "bad_json"),
        (b"[1]", "", "not_object"),
        (b'{"event_id": "e"}', "type", "missing_field"),
        (b'{"type": "router.exploded"}', "type", "bad_value"),
        (b'{"type": 5}', "type", "bad_value"),
        (
            b'{"type": "admin.applied", "event_id": "e", "router_id": "default", '
            b'"occurred_at": "2026-11-25T17:00:00Z", "command": "rollback"}',
            "request_id",
            "missing_field",
        ),
        (
            b'{"type": "admin.applied", "event_id": "e", "occurred_at": "2026-11-25T17:00:00Z", '
            b'"request_id": "r", "command": "rollback", "schema_version": 2}',
            "schema_version",
            "schema_version",
        ),
    ],
)
def test_invalid_events(raw: bytes, field: str, code: str) -> None:
    with pytest.raises(InvalidRouterEvent) as info:
        parse_router_event(raw)
    assert (info.value.field, info.value.code) == (field, code)
