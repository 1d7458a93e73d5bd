"""Building and validating trajectory events on the agent's side.

``encode_trajectory`` runs the daemon's own parser (``parse_trajectory``) over the exact
bytes that will be sent, so an event the SDK accepts is an event the daemon learns from,
and a broken one fails in the caller's code instead of silently landing in the
dead-letter topic. ``make_trajectory`` turns a routing decision and its outcome into
the contract's dict, so apps never hand-assemble the schema.
"""

from __future__ import annotations

import json
import math
import numbers
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from memabrad.wire.parse import MAX_BYTES, InvalidTrajectory, parse_trajectory
from memabrad.wire.trajectory import DEFAULT_ROUTER_ID, SCHEMA_VERSION, Trajectory

__all__ = ["EncodedTrajectory", "TrajectoryLike", "encode_trajectory", "make_trajectory", "rfc3339_now"]

TrajectoryLike = Trajectory | Mapping[str, Any] | bytes | bytearray | memoryview | str
"""What the producers accept: a model, a JSON-ready dict, or already-serialized JSON."""


@dataclass(frozen=True, slots=True)
class EncodedTrajectory:
    """A validated trajectory as it goes on the wire: Kafka key (``router_id``) and value."""

    trajectory_id: str
    router_id: str
    key: bytes
    value: bytes


def rfc3339_now() -> str:
    """The current UTC time as RFC 3339 with millisecond precision and ``Z``."""
    return _rfc3339(datetime.now(UTC))


def _rfc3339(dt: datetime) -> str:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"datetime must carry a time zone, got naive {dt.isoformat()}")
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    """What ``json.dumps`` cannot encode by itself: aware datetimes and pydantic models."""
    if isinstance(value, datetime):
        return _rfc3339(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"object of type {type(value).__name__} is not JSON serializable")


def _non_finite_path(value: Any, path: str = "") -> str | None:
    """Dotted path of the first NaN/infinity in ``value`` (error path only: names the field at fault)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "<root>"
    if isinstance(value, Mapping):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    else:
        return None
    for sub_path, sub in items:
        found = _non_finite_path(sub, sub_path)
        if found is not None:
            return found
    return None


def _dict_bytes(obj: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default)
    except ValueError as err:
        field = _non_finite_path(obj)
        if field is not None:
            raise InvalidTrajectory(f"{field}: NaN and infinity are not JSON numbers", field=field) from None
        raise InvalidTrajectory(f"cannot serialize to JSON: {err}", code="bad_json") from None
    except (TypeError, RecursionError) as err:
        raise InvalidTrajectory(f"cannot serialize to JSON: {err}", code="bad_json") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidTrajectory("trajectory is not valid UTF-8 (lone surrogate)", code="not_utf8") from None


def encode_trajectory(trajectory: TrajectoryLike, *, max_bytes: int = MAX_BYTES) -> EncodedTrajectory:
    """Validate ``trajectory`` exactly as the daemon will and return its wire bytes and key.

    Bytes and strings are sent unchanged; dicts are serialized compactly (aware
    ``datetime`` values become RFC 3339); models are dumped to JSON. Raises
    ``InvalidTrajectory`` (same ``reason``/``field``/``code`` the daemon would put in
    the dead-letter headers) and nothing is sent.

    >>> enc = encode_trajectory({"schema_version": 1, "trajectory_id": "t-1", "router_id": "r1",
    ...     "occurred_at": "2026-11-25T17:00:00Z", "task": {"input": "hi"}, "candidates": ["a", "b"],
    ...     "decision": {"route": "b", "propensity": 0.5}, "outcome": {"reward": 1, "error": False, "latency_ms": 3}})
    >>> enc.key, enc.trajectory_id
    (b'r1', 't-1')
    >>> try:
    ...     encode_trajectory({"schema_version": 1, "trajectory_id": "t-2", "occurred_at": "2026-11-25T17:00:00Z",
    ...         "task": {"input": "hi"}, "candidates": ["a"], "decision": {"route": "zzz"},
    ...         "outcome": {"reward": 1, "error": False, "latency_ms": 3}})
    ... except InvalidTrajectory as err:
    ...     print(err.field, "|", err.reason)
    decision.route | decision.route: must be one of candidates
    """
    if isinstance(trajectory, Trajectory):
        raw = trajectory.model_dump_json().encode("utf-8")
    elif isinstance(trajectory, bytes | bytearray | memoryview):
        raw = bytes(trajectory)
    elif isinstance(trajectory, str):
        try:
            raw = trajectory.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidTrajectory("trajectory is not valid UTF-8 (lone surrogate)", code="not_utf8") from None
    elif isinstance(trajectory, Mapping):
        raw = _dict_bytes(trajectory)
    else:
        raise TypeError(f"a trajectory must be a Trajectory, a dict, bytes or str, not {type(trajectory).__name__}")
    parsed = parse_trajectory(raw, max_bytes=max_bytes)
    return EncodedTrajectory(parsed.trajectory_id, parsed.router_id, parsed.router_id.encode("utf-8"), raw)


def _number(value: Any) -> Any:
    """Plain float for real numbers (numpy scalars included); anything else is left for validation to reject."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _task_dict(task: Any) -> dict[str, Any]:
    if isinstance(task, str):
        return {"input": task}
    if isinstance(task, BaseModel):
        return task.model_dump(mode="json", exclude_none=True)
    if isinstance(task, Mapping):
        return dict(task)
    raise TypeError(f"task must be a dict, a Task model or the input string, not {type(task).__name__}")


def _decision_dict(decision: Any) -> dict[str, Any]:
    if isinstance(decision, Mapping):
        route, propensity, version = decision.get("route"), decision.get("propensity"), decision.get("router_version")
    else:  # memabrad.learning.router.Decision, memabrad.wire.Decision or any object with these attributes
        route = decision.route
        propensity = getattr(decision, "propensity", None)
        version = getattr(decision, "router_version", None)
    out: dict[str, Any] = {"route": route}
    if propensity is not None:
        out["propensity"] = _number(propensity)
    if version is not None:
        out["router_version"] = version
    return out


def _outcome_dict(outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, Mapping):
        reward, error, latency = outcome.get("reward"), outcome.get("error"), outcome.get("latency_ms")
    elif isinstance(outcome, tuple | list):
        if len(outcome) != 3:
            raise ValueError("an outcome tuple is (reward, error, latency_ms)")
        reward, error, latency = outcome
    else:  # memabrad.wire.Outcome or any object with these attributes
        reward, error, latency = outcome.reward, outcome.error, outcome.latency_ms
    return {"reward": _number(reward), "error": bool(error) if error is not None else None,
            "latency_ms": _number(latency)}


def make_trajectory(
    task: Mapping[str, Any] | BaseModel | str,
    candidates: Sequence[str],
    decision: Any,
    outcome: Any,
    *,
    router_id: str = DEFAULT_ROUTER_ID,
    trajectory_id: str | None = None,
    occurred_at: datetime | str | None = None,
    steps: Sequence[Mapping[str, Any]] | None = None,
    validate: bool = False,
) -> dict[str, Any]:
    """The trajectory event v1 dict for one routed task, ready for a producer.

    ``decision`` is what ``RouterFollower.choose`` returned (or a dict with ``route``,
    ``propensity``, ``router_version``): carrying its propensity and version is what lets
    the daemon evaluate new routers off-policy and guard a fresh promotion. ``outcome``
    is a dict, a ``memabrad.wire.Outcome`` or a ``(reward, error, latency_ms)`` tuple.
    ``trajectory_id`` defaults to a fresh UUID (it is the daemon's dedupe key: reuse it
    when re-sending the same event) and ``occurred_at`` to now. With ``validate`` the
    dict is checked now (``InvalidTrajectory``); producers check it anyway.

    >>> t = make_trajectory("latest gold price?", ["direct", "tool.web_search"],
    ...     {"route": "tool.web_search", "propensity": 0.9, "router_version": "20261125-170000"},
    ...     (0.8, False, 912.0), trajectory_id="t-1", occurred_at="2026-11-25T17:00:00Z", validate=True)
    >>> t["task"], t["decision"]["propensity"], t["outcome"]
    ({'input': 'latest gold price?'}, 0.9, {'reward': 0.8, 'error': False, 'latency_ms': 912.0})
    """
    if occurred_at is None:
        when = rfc3339_now()
    elif isinstance(occurred_at, datetime):
        when = _rfc3339(occurred_at)
    else:
        when = occurred_at
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "trajectory_id": trajectory_id if trajectory_id is not None else str(uuid.uuid4()),
        "router_id": router_id,
        "occurred_at": when,
        "task": _task_dict(task),
        "candidates": list(candidates),
        "decision": _decision_dict(decision),
        "outcome": _outcome_dict(outcome),
    }
    if steps:
        out["steps"] = [dict(s) for s in steps]
    if validate:
        encode_trajectory(out)
    return out
