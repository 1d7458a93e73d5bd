"""Admin command v1 (docs/contract.md §4) and its HMAC signature.

The signature covers the command object *as received* (minus ``signature``),
not pydantic's re-serialisation: a re-dump could reorder, coerce or drop
fields and so break signatures made by other producers. ``AdminCommand.raw``
keeps that object.

>>> cmd = {"schema_version": 1, "command": "evaluate_now", "request_id": "r-1",
...        "issued_at": "2026-11-25T17:05:00Z"}
>>> signed = {**cmd, "signature": sign_command(cmd, "k")}
>>> verify_signature(signed, "k"), verify_signature(signed, "other")
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from memabrad.wire.trajectory import DEFAULT_ROUTER_ID, Rfc3339Datetime, RouterId, SchemaVersion, field_error

__all__ = [
    "COMMANDS",
    "COMMANDS_NEEDING_VERSION",
    "AdminCommand",
    "CommandName",
    "canonical_bytes",
    "sign_command",
    "verify_signature",
]

CommandName = Literal[
    "rollback", "evaluate_now", "pause_promotions", "resume_promotions", "pin_baseline", "unpin_baseline"
]
COMMANDS: Final[frozenset[str]] = frozenset(get_args(CommandName))
COMMANDS_NEEDING_VERSION: Final[frozenset[str]] = frozenset({"rollback", "pin_baseline"})


class AdminCommand(BaseModel):
    """One operator command; ``raw`` is the object it was parsed from (for ``verify``)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    schema_version: SchemaVersion
    command: CommandName
    request_id: str = Field(min_length=1, max_length=128)
    router_id: RouterId = DEFAULT_ROUTER_ID
    version_id: str | None = Field(default=None, min_length=1, max_length=128)
    issued_at: Rfc3339Datetime
    requested_by: str | None = None
    reason: str | None = None
    signature: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{1,128}$")

    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _version_when_needed(self) -> AdminCommand:
        if self.command in COMMANDS_NEEDING_VERSION and self.version_id is None:
            raise field_error("version_id", f"required for {self.command}", code="missing_field")
        return self

    @classmethod
    def from_raw(cls, obj: Mapping[str, Any]) -> AdminCommand:
        """Validate ``obj`` and remember it as ``raw``; raises pydantic's ``ValidationError``."""
        cmd = cls.model_validate(obj)
        cmd._raw = dict(obj)
        return cmd

    @property
    def raw(self) -> dict[str, Any]:
        """The object as received, or for a model built in Python its JSON dump without nulls."""
        if self._raw is not None:
            return self._raw
        return self.model_dump(mode="json", exclude_none=True)

    def verify(self, key: bytes | str) -> bool:
        """True when ``signature`` is the HMAC of ``raw`` under ``key``."""
        return verify_signature(self.raw, key)


def canonical_bytes(cmd: Mapping[str, Any]) -> bytes:
    """The signed form: the object without ``signature``, sorted keys, no spaces, UTF-8."""
    body = {k: v for k, v in cmd.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _key_bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def sign_command(cmd: Mapping[str, Any], key: bytes | str) -> str:
    """Hex HMAC-SHA256 of ``canonical_bytes(cmd)``; an empty key is refused as a misconfiguration."""
    key_bytes = _key_bytes(key)
    if not key_bytes:
        raise ValueError("admin HMAC key must not be empty")
    return hmac.new(key_bytes, canonical_bytes(cmd), hashlib.sha256).hexdigest()


def verify_signature(cmd: Mapping[str, Any], key: bytes | str) -> bool:
    """Constant-time check of ``cmd["signature"]``; False for a missing or malformed one, never raises."""
    signature = cmd.get("signature")
    if not isinstance(signature, str) or not _key_bytes(key):
        return False
    try:
        expected = sign_command(cmd, key)
    except (TypeError, ValueError):  # not JSON-serialisable: cannot have been signed
        return False
    return hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("utf-8", "replace"))
