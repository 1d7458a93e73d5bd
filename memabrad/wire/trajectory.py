"""Trajectory event v1 (docs/contract.md §2): the daemon's only input format.

The models validate strictly (numbers must be JSON numbers, booleans must be
booleans, timestamps must be RFC 3339 strings with a zone) because a lax
coercion here would silently teach the router from malformed events. Unknown
fields are ignored so producers can add fields without breaking us.

``null`` for an optional field means the same as leaving it out.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "CANDIDATE_PATTERN",
    "DEFAULT_ROUTER_ID",
    "ROUTER_ID_PATTERN",
    "SCHEMA_VERSION",
    "TRAJECTORY_ID_PATTERN",
    "Decision",
    "FiniteNumber",
    "Outcome",
    "Rfc3339Datetime",
    "RouterId",
    "SchemaVersion",
    "Task",
    "Trajectory",
    "field_error",
]

SCHEMA_VERSION = 1
DEFAULT_ROUTER_ID = "default"
TRAJECTORY_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
ROUTER_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
CANDIDATE_PATTERN = r"^[A-Za-z0-9._:/-]{1,128}$"

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})\Z")


def field_error(field: str, message: str, code: str = "bad_value") -> PydanticCustomError:
    """An error whose dotted ``field`` and metric ``code`` survive into ``InvalidTrajectory``.

    Cross-field checks run in model validators, whose errors pydantic reports at
    the model's location; carrying the real field in the context keeps the DLQ
    header pointing at the offending field.
    """
    return PydanticCustomError("wire_field", message, {"wire_field": field, "wire_code": code})


def _check_schema_version(value: Any) -> int:
    # Literal[1] would accept 1.0 and true; the contract says the integer 1.
    if type(value) is not int or value != SCHEMA_VERSION:
        raise PydanticCustomError("schema_version", "unsupported schema_version, expected 1")
    return value


def _check_rfc3339(value: Any) -> Any:
    # pydantic alone would accept unix timestamps (ints or digit strings) and naive times.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("rfc3339_type", "must be an RFC 3339 string with a zone")
    if _RFC3339.match(value) is None:
        raise PydanticCustomError("rfc3339_format", "must be RFC 3339 with a zone, e.g. 2026-11-25T17:00:00Z")
    return value


def _null_is_default_router(value: Any) -> Any:
    return DEFAULT_ROUTER_ID if value is None else value


SchemaVersion = Annotated[int, BeforeValidator(_check_schema_version)]
"""The integer ``1``; not ``1.0``, ``true`` or ``"1"``."""

Rfc3339Datetime = Annotated[AwareDatetime, Strict(False), BeforeValidator(_check_rfc3339)]
"""An aware datetime given as an RFC 3339 string (or an aware ``datetime`` from Python)."""

RouterId = Annotated[str, BeforeValidator(_null_is_default_router), Field(pattern=ROUTER_ID_PATTERN)]
"""1-64 chars of ``[A-Za-z0-9._-]``; ``null`` means ``"default"``."""

FiniteNumber = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""An int or float JSON number; not a bool, not a numeric string, not NaN/inf."""

_FeatureKey = Annotated[str, Field(max_length=64)]
_CandidateName = Annotated[str, Field(pattern=CANDIDATE_PATTERN)]

_MODEL_CONFIG = ConfigDict(strict=True, extra="ignore", frozen=True)


class Task(BaseModel):
    """What the agent was asked; ``task_type`` is the slice for per-slice metrics."""

    model_config = _MODEL_CONFIG

    input: str = Field(min_length=1, max_length=16384)
    task_type: str | None = Field(default=None, max_length=64)
    features: dict[_FeatureKey, FiniteNumber] = Field(default_factory=dict, max_length=256)
    tags: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("features", "tags", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: Any) -> Any:
        # Normalise to empty containers so consumers never have to test for None.
        if value is None:
            return {} if info.field_name == "features" else []
        return value


class Decision(BaseModel):
    """What the logging router chose; ``propensity`` None means unknown (estimators impute)."""

    model_config = _MODEL_CONFIG

    route: str
    propensity: FiniteNumber | None = Field(default=None, gt=0, le=1)
    router_version: str | None = None


class Outcome(BaseModel):
    """How the chosen route went: the learning signal."""

    model_config = _MODEL_CONFIG

    reward: FiniteNumber
    error: bool
    latency_ms: FiniteNumber = Field(ge=0)


class Trajectory(BaseModel):
    """One trajectory event v1; ``trajectory_id`` is the dedupe key.

    >>> t = Trajectory.model_validate({
    ...     "schema_version": 1, "trajectory_id": "t-1", "occurred_at": "2026-11-25T17:00:00Z",
    ...     "task": {"input": "hi"}, "candidates": ["a", "b"], "decision": {"route": "b"},
    ...     "outcome": {"reward": 1, "error": False, "latency_ms": 3}})
    >>> t.router_id, t.decision.propensity, t.outcome.reward
    ('default', None, 1.0)
    >>> t.to_json_dict()["occurred_at"]
    '2026-11-25T17:00:00Z'
    """

    model_config = _MODEL_CONFIG

    schema_version: SchemaVersion
    trajectory_id: str = Field(pattern=TRAJECTORY_ID_PATTERN)
    router_id: RouterId = DEFAULT_ROUTER_ID
    occurred_at: Rfc3339Datetime
    task: Task
    candidates: list[_CandidateName] = Field(min_length=1, max_length=64)
    decision: Decision
    outcome: Outcome
    steps: list[dict[str, Any]] = Field(default_factory=list, max_length=256)

    @field_validator("steps", mode="before")
    @classmethod
    def _null_steps_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("candidates")
    @classmethod
    def _unique_candidates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise PydanticCustomError("unique_candidates", "route names must be unique")
        return value

    @model_validator(mode="after")
    def _route_is_a_candidate(self) -> Trajectory:
        if self.decision.route not in self.candidates:
            raise field_error("decision.route", "must be one of candidates")
        return self

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``occurred_at`` as an RFC 3339 string) that parses back to an equal model."""
        return self.model_dump(mode="json")
