"""Bytes -> validated models: the one parser used for Kafka messages and for files.

Every failure becomes an ``InvalidMessage`` subclass carrying a one-line
``reason`` (for the DLQ header), the dotted ``field`` at fault and a ``code``
from the small fixed set ``CODES`` (safe as a metric label: it never echoes
input). Checks run in the order the contract implies: size, UTF-8, JSON, schema.

>>> try:
...     parse_trajectory(b'{"schema_version": 1, "candidates": ["a", "a"]}')
... except InvalidTrajectory as err:
...     print(err.code, err.field, "|", err.reason)
missing_field trajectory_id | trajectory_id: required field is missing
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from memabrad.wire.admin import COMMANDS, AdminCommand
from memabrad.wire.trajectory import Trajectory

__all__ = [
    "CODES",
    "MAX_BYTES",
    "InvalidAdminCommand",
    "InvalidMessage",
    "InvalidTrajectory",
    "parse_admin_command",
    "parse_json_object",
    "parse_trajectory",
    "validation_error_to",
]

E = TypeVar("E", bound="InvalidMessage")
M = TypeVar("M", bound=BaseModel)

MAX_BYTES: Final = 1_048_576
MAX_REASON_CHARS: Final = 300
MAX_FIELD_CHARS: Final = 200

TOO_LARGE: Final = "too_large"
NOT_UTF8: Final = "not_utf8"
BAD_JSON: Final = "bad_json"
NOT_OBJECT: Final = "not_object"
SCHEMA_VERSION: Final = "schema_version"
MISSING_FIELD: Final = "missing_field"
BAD_VALUE: Final = "bad_value"
CODES: Final = frozenset(
    {
        TOO_LARGE,
        NOT_UTF8,
        BAD_JSON,
        NOT_OBJECT,
        SCHEMA_VERSION,
        MISSING_FIELD,
        BAD_VALUE,
    }
)
"""Every ``code`` an ``InvalidMessage`` can carry; bounded so it is safe as a metric label."""

_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_OBJECT_TYPES = frozenset({"model_type", "model_attributes_type", "dict_type"})


def _one_line(text: str, limit: int) -> str:
    text = _NOT_ONE_LINE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InvalidMessage(Exception):
    """A message that breaks the wire contract; ``reason`` is one line, ``code`` is in ``CODES``."""

    def __init__(self, reason: str, *, field: str = "", code: str = BAD_VALUE) -> None:
        self.reason = _one_line(reason, MAX_REASON_CHARS)
        self.field = _one_line(field, MAX_FIELD_CHARS)
        self.code = code if code in CODES else BAD_VALUE
        super().__init__(f"{self.code}: {self.reason}")


class InvalidTrajectory(InvalidMessage):
    """A trajectory event for the dead-letter topic."""


class InvalidAdminCommand(InvalidMessage):
    """An admin command to answer with ``admin.rejected``.

    ``request_id`` and ``command`` are filled from the raw object when they are
    readable (a string id of 1-128 chars, a known command name), else None, so
    the rejection event can still name what it rejects.
    """

    def __init__(
        self,
        reason: str,
        *,
        field: str = "",
        code: str = BAD_VALUE,
        request_id: str | None = None,
        command: str | None = None,
    ) -> None:
        super().__init__(reason, field=field, code=code)
        self.request_id = request_id
        self.command = command


def validation_error_to(err: ValidationError, exc_type: type[E]) -> E:
    """Map pydantic's first error to ``exc_type``; the first is the earliest field in the schema."""
    errors = err.errors(include_url=False, include_input=False)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return exc_type("invalid message", code=BAD_VALUE)
    first = errors[0]
    kind = first["type"]
    loc = first["loc"]
    ctx = first.get("ctx") or {}
    msg = first["msg"].removeprefix("Value error, ")
    if kind == "json_invalid":
        return exc_type(msg, code=BAD_JSON)
    if not loc and kind in _OBJECT_TYPES:
        return exc_type("top level must be a JSON object", code=NOT_OBJECT)
    field = ctx.get("wire_field") or ".".join(str(part) for part in loc)
    if loc and loc[0] == "schema_version":
        code = SCHEMA_VERSION
    elif kind == "missing":
        code, msg = MISSING_FIELD, "required field is missing"
    else:
        code = ctx.get("wire_code", BAD_VALUE)
    return exc_type(f"{field}: {msg}" if field else msg, field=field, code=code)


def _to_bytes(raw: Any, max_bytes: int, exc_type: type[InvalidMessage]) -> bytes:
    """Size then UTF-8 checks; returns the bytes the JSON parser should see."""
    if isinstance(raw, str):
        if len(raw) > max_bytes:  # UTF-8 never has fewer bytes than code points
            raise exc_type(f"message is larger than {max_bytes} bytes", code=TOO_LARGE)
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise exc_type("message is not valid UTF-8 (lone surrogate)", code=NOT_UTF8) from None
    elif isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
    else:
        raise exc_type(f"message must be bytes or str, not {type(raw).__name__}", code=BAD_JSON)
    if len(data) > max_bytes:
        raise exc_type(f"message is larger than {max_bytes} bytes", code=TOO_LARGE)
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise exc_type(f"message is not valid UTF-8 (byte offset {err.start})", code=NOT_UTF8) from None
    return data


def _strict_json(data: bytes, exc_type: type[InvalidMessage]) -> Any:
    """Parse JSON rejecting NaN/Infinity, which are not JSON and would poison stored cases."""
    try:
        return from_json(data, allow_inf_nan=False)
    except Exception as err:  # ValueError in practice; anything else is still bad JSON
        raise exc_type(f"invalid JSON: {err}", code=BAD_JSON) from None


def parse_json_object(
    raw: bytes | str,
    *,
    max_bytes: int = MAX_BYTES,
    exc_type: type[InvalidMessage] = InvalidMessage,
) -> dict[str, Any]:
    """Strictly parse a JSON object (size, UTF-8, JSON, object checks), raising ``exc_type``.

    >>> parse_json_object('{"a": 1}')
    {'a': 1}
    >>> try:
    ...     parse_json_object(b"[1, 2]")
    ... except InvalidMessage as err:
    ...     print(err.code, repr(err.field), err.reason)
    not_object '' top level must be a JSON object
    """
    data = _to_bytes(raw, max_bytes, exc_type)
    obj = _strict_json(data, exc_type)
    if not isinstance(obj, dict):
        raise exc_type("top level must be a JSON object", code=NOT_OBJECT)
    return obj


def _validate_json(model: type[M], data: bytes, exc_type: type[InvalidMessage]) -> M:
    try:  # ``model_validate_json`` without its Python wrapper (same validator, same arguments)
        return model.__pydantic_validator__.validate_json(data)
    except ValidationError as err:
        raise validation_error_to(err, exc_type) from None
    except Exception as err:  # defensive: the hot path must only ever raise exc_type
        raise exc_type(f"cannot validate message: {type(err).__name__}", code=BAD_VALUE) from None


def parse_trajectory(raw: bytes | str, *, max_bytes: int = MAX_BYTES) -> Trajectory:
    """Parse one trajectory event v1; raises only ``InvalidTrajectory``.

    The fast path hands the bytes straight to pydantic's Rust JSON validator.
    Only messages that mention ``NaN``/``Infinity`` (pydantic's parser accepts
    those inside the opaque ``steps``) take a second, strict JSON pass first.

    >>> t = parse_trajectory(b'{"schema_version": 1, "trajectory_id": "t-1", '
    ...     b'"occurred_at": "2026-11-25T17:00:00Z", "task": {"input": "hi"}, "candidates": ["a", "b"], '
    ...     b'"decision": {"route": "a", "propensity": 0.5}, "outcome": {"reward": 1, "error": false, '
    ...     b'"latency_ms": 12.5}}')
    >>> t.decision.route, t.decision.propensity, t.router_id
    ('a', 0.5, 'default')
    """
    data = _to_bytes(raw, max_bytes, InvalidTrajectory)
    if b"NaN" in data or b"Infinity" in data:
        _strict_json(data, InvalidTrajectory)
    return _validate_json(Trajectory, data, InvalidTrajectory)


def parse_admin_command(raw: bytes | str, *, max_bytes: int = MAX_BYTES) -> AdminCommand:
    """Parse one admin command v1, keeping the raw object (``cmd.raw``) for signature checks."""
    obj = parse_json_object(raw, max_bytes=max_bytes, exc_type=InvalidAdminCommand)
    try:
        return AdminCommand.from_raw(obj)
    except ValidationError as err:
        exc = validation_error_to(err, InvalidAdminCommand)
    except Exception as err:  # defensive, as for trajectories
        exc = InvalidAdminCommand(f"cannot validate command: {type(err).__name__}", code=BAD_VALUE)
    request_id = obj.get("request_id")
    command = obj.get("command")
    if isinstance(request_id, str) and 1 <= len(request_id) <= 128:
        exc.request_id = request_id
    if isinstance(command, str) and command in COMMANDS:
        exc.command = command
    raise exc
