"""Router event v1 (docs/contract.md §3): what the daemon publishes to ``memabra.router.events``.

Event models allow extra fields so additive fields survive a round trip and
consumers of an older version keep working. ``event_id`` comes from
``make_event_id`` over the event's logical key, never from time or
randomness, so an event re-published after a crash carries the same id.

>>> ev = AdminApplied(event_id=make_event_id("default", "admin.applied", "r-1"), router_id="default",
...                   occurred_at="2026-11-25T17:05:00Z", request_id="r-1", command="evaluate_now")
>>> parse_router_event(event_to_bytes(ev)) == ev
True
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from memabrad.wire.admin import CommandName
from memabrad.wire.parse import MAX_BYTES, InvalidMessage, parse_json_object, validation_error_to
from memabrad.wire.trajectory import DEFAULT_ROUTER_ID, RouterId, SchemaVersion

__all__ = [
    "EVENT_TYPES",
    "REQUIRED_GATES",
    "AdminApplied",
    "AdminRejected",
    "Benchmark",
    "GateResult",
    "Gates",
    "InvalidRouterEvent",
    "PolicyMetrics",
    "RouterEvaluated",
    "RouterEvent",
    "RouterEventBase",
    "RouterPromoted",
    "RouterRejected",
    "RouterRolledBack",
    "Verdict",
    "event_to_bytes",
    "make_event_id",
    "parse_router_event",
]

REQUIRED_GATES: Final = ("reward_delta", "error_rate_delta", "latency_delta_ms", "task_count")
_EVENT_ID_NAMESPACE: Final = uuid.UUID("6f1f6d2e-3a5b-5c1e-9a0e-6d656d616272")

Verdict = Literal["promote", "reject", "inconclusive"]


class InvalidRouterEvent(InvalidMessage):
    """Bytes that are not a router event v1."""


def _finite_or_none(value: Any) -> Any:
    # JSON has no inf/NaN: publish null rather than invalid JSON or a lossy "Infinity".
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_Metric = Annotated[float | None, BeforeValidator(_finite_or_none)]


class _DictLike(BaseModel):
    """Item access so code written against the report dicts works on the models too."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        """``dict.get`` over declared and extra fields."""
        try:
            return self[key]
        except KeyError:
            return default

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict, extra fields included."""
        return self.model_dump(mode="json")


class GateResult(_DictLike):
    """One promotion gate; ``value``/``threshold`` are None when not finite or not computable."""

    value: _Metric
    threshold: _Metric
    passed: bool


class PolicyMetrics(_DictLike):
    """A policy's estimated metrics; CIs ride along as extras (``reward_ci_low``, ...)."""

    reward: _Metric
    error_rate: _Metric
    latency_ms: _Metric


class Benchmark(_DictLike):
    """What the gates were computed from."""

    task_count: int = Field(ge=0)
    estimator: str
    baseline: PolicyMetrics
    challenger: PolicyMetrics


def _check_gates(gates: dict[str, GateResult]) -> dict[str, GateResult]:
    missing = [name for name in REQUIRED_GATES if name not in gates]
    if missing:
        raise ValueError(f"missing required gates: {', '.join(missing)}")
    return gates


Gates = Annotated[dict[str, GateResult], AfterValidator(_check_gates)]
"""Gate results by name; at least ``REQUIRED_GATES``."""


class RouterEventBase(BaseModel):
    """Fields every router event carries."""

    model_config = ConfigDict(extra="allow", frozen=True)

    schema_version: SchemaVersion = 1
    event_id: str = Field(min_length=1, max_length=128)
    type: str
    router_id: RouterId = DEFAULT_ROUTER_ID
    occurred_at: AwareDatetime


class _GatedEvent(RouterEventBase):
    report_id: str
    gates: Gates
    benchmark: Benchmark


class RouterPromoted(_GatedEvent):
    """A challenger passed the gates and is now the active version."""

    type: Literal["router.promoted"] = "router.promoted"
    version_id: str
    previous_version_id: str | None


class RouterRejected(_GatedEvent):
    """A challenger failed the gates (``reject``) or the evidence cannot yet decide (``inconclusive``)."""

    type: Literal["router.rejected"] = "router.rejected"
    verdict: Literal["reject", "inconclusive"]
    reasons: list[str]


class RouterEvaluated(_GatedEvent):
    """A dry run: what would have happened, nothing changed."""

    type: Literal["router.evaluated"] = "router.evaluated"
    would_promote: bool
    dry_run: Literal[True] = True
    verdict: str | None = None  # the gates' verdict (promote, reject, inconclusive)
    reasons: list[str] = Field(default_factory=list)
    paused: bool = False  # nothing was promoted because promotions are paused, not because of a dry run


class RouterRolledBack(RouterEventBase):
    """The active version moved back from ``previous_version_id`` to ``version_id``."""

    type: Literal["router.rolled_back"] = "router.rolled_back"
    version_id: str
    previous_version_id: str | None
    trigger: Literal["admin", "cli", "guard"]
    request_id: str | None = None
    requested_by: str | None = None
    reason: str | None = None


class AdminApplied(RouterEventBase):
    """An admin command took effect (rollbacks answer with ``router.rolled_back`` instead)."""

    type: Literal["admin.applied"] = "admin.applied"
    request_id: str
    command: CommandName


class AdminRejected(RouterEventBase):
    """An admin command was refused and changed nothing; ``request_id`` is None when unreadable."""

    type: Literal["admin.rejected"] = "admin.rejected"
    request_id: str | None
    command: str | None
    reason: str


RouterEvent = Annotated[
    RouterPromoted | RouterRejected | RouterEvaluated | RouterRolledBack | AdminApplied | AdminRejected,
    Field(discriminator="type"),
]
"""Any router event v1, discriminated on ``type``."""

EVENT_TYPES: Final[dict[str, type[RouterEventBase]]] = {
    "router.promoted": RouterPromoted,
    "router.rejected": RouterRejected,
    "router.evaluated": RouterEvaluated,
    "router.rolled_back": RouterRolledBack,
    "admin.applied": AdminApplied,
    "admin.rejected": AdminRejected,
}


def make_event_id(router_id: str, type: str, *key_parts: str | int | None) -> str:
    """A UUIDv5 over the event's logical key: same inputs, same id, across processes and crashes.

    >>> make_event_id("default", "router.promoted", "20261125-170000") == make_event_id(
    ...     "default", "router.promoted", "20261125-170000")
    True
    >>> make_event_id("a", "b", "c") != make_event_id("a", "b:c")
    True
    """
    # A JSON array is an unambiguous encoding: ("a", "b:c") and ("a:b", "c") differ.
    name = json.dumps([router_id, type, *key_parts], ensure_ascii=False, separators=(",", ":"))
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, name))


def event_to_bytes(event: RouterEventBase) -> bytes:
    """Compact JSON, nulls kept (``previous_version_id`` is null at first), occurred_at in RFC 3339."""
    return event.model_dump_json().encode("utf-8")


def parse_router_event(raw: bytes | str, *, max_bytes: int = MAX_BYTES) -> RouterEvent:
    """Parse a router event v1 by its ``type``; raises only ``InvalidRouterEvent``."""
    obj = parse_json_object(raw, max_bytes=max_bytes, exc_type=InvalidRouterEvent)
    kind = obj.get("type")
    if kind is None:
        raise InvalidRouterEvent("type: required field is missing", field="type", code="missing_field")
    model = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InvalidRouterEvent("type: unknown router event type", field="type", code="bad_value")
    try:
        return model.model_validate(obj)  # type: ignore[return-value]
    except ValidationError as err:
        raise validation_error_to(err, InvalidRouterEvent) from None
    except Exception as err:  # defensive: never leak another exception type
        raise InvalidRouterEvent(f"cannot validate event: {type(err).__name__}") from None
