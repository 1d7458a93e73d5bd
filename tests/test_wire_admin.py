"""Admin command v1 (CONTRACT §4): parsing rules and the HMAC signature, pinned to the contract's vector."""

from __future__ import annotations

import json
from typing import Any

import pytest

from memabrad.wire import (
    COMMANDS,
    AdminCommand,
    InvalidAdminCommand,
    canonical_bytes,
    parse_admin_command,
    sign_command,
    verify_signature,
)

CONTRACT_COMMAND: dict[str, Any] = {
    "schema_version": 1,
    "command": "rollback",
    "request_id": "r-42",
    "router_id": "default",
    "version_id": "20261125-170000",
    "issued_at": "2026-11-25T17:05:00Z",
    "requested_by": "oncall@example.com",
    "reason": "reward dropped",
}
CONTRACT_SIGNATURE = "f72924c0dcef867e1fb0b8b4e3d4c81986d99c6f759a39cb5f88686ba53553b7"


def test_contract_test_vector() -> None:
    assert sign_command(CONTRACT_COMMAND, "test-key") == CONTRACT_SIGNATURE
    assert sign_command(CONTRACT_COMMAND, b"test-key") == CONTRACT_SIGNATURE
    signed = {**CONTRACT_COMMAND, "signature": CONTRACT_SIGNATURE}
    assert sign_command(signed, "test-key") == CONTRACT_SIGNATURE  # signature itself is excluded
    assert verify_signature(signed, "test-key")


def test_canonical_bytes() -> None:
    assert canonical_bytes({"b": "é", "a": 1, "signature": "ff"}) == '{"a":1,"b":"é"}'.encode()


def test_parsed_command_verifies_against_raw_object() -> None:
    raw = json.dumps({**CONTRACT_COMMAND, "signature": CONTRACT_SIGNATURE}, indent=2)
    cmd = parse_admin_command(raw)
    assert cmd.command == "rollback" and cmd.version_id == "20261125-170000"
    assert cmd.verify("test-key")
    assert not cmd.verify("wrong-key")


def test_signature_covers_fields_the_model_ignores() -> None:
    """Extra fields are ignored by the model but were signed by the producer, so they must count."""
    body = {**CONTRACT_COMMAND, "ticket": "INC-7", "ttl": 1.50}
    raw = json.dumps({**body, "signature": sign_command(body, "test-key")})
    cmd = parse_admin_command(raw)
    assert "ticket" not in cmd.model_dump()
    assert cmd.raw["ticket"] == "INC-7"
    assert cmd.verify("test-key")
    tampered = parse_admin_command(raw.replace("INC-7", "INC-8"))
    assert not tampered.verify("test-key")


def test_tampered_missing_or_malformed_signatures_fail() -> None:
    signed = {**CONTRACT_COMMAND, "signature": CONTRACT_SIGNATURE}
    assert not verify_signature({**signed, "version_id": "20261125-160000"}, "test-key")
    assert not verify_signature(CONTRACT_COMMAND, "test-key")
    assert not verify_signature({**CONTRACT_COMMAND, "signature": None}, "test-key")
    assert not verify_signature({**CONTRACT_COMMAND, "signature": 12}, "test-key")
    assert not verify_signature({**CONTRACT_COMMAND, "signature": "ünïcode"}, "test-key")
    assert not verify_signature({**CONTRACT_COMMAND, "signature": CONTRACT_SIGNATURE[:-2]}, "test-key")
    assert not verify_signature(signed, "")
    assert verify_signature({**CONTRACT_COMMAND, "signature": CONTRACT_SIGNATURE.upper()}, "test-key")


def test_empty_key_is_refused_for_signing() -> None:
    with pytest.raises(ValueError):
        sign_command(CONTRACT_COMMAND, "")


def test_model_built_in_python_has_a_raw_form() -> None:
    cmd = AdminCommand.model_validate(CONTRACT_COMMAND)
    assert cmd.raw == CONTRACT_COMMAND
    assert sign_command(cmd.raw, "test-key") == CONTRACT_SIGNATURE


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_parses(command: str) -> None:
    doc = {**CONTRACT_COMMAND, "command": command}
    cmd = parse_admin_command(json.dumps(doc))
    assert cmd.command == command


@pytest.mark.parametrize("command", ["evaluate_now", "pause_promotions", "resume_promotions", "unpin_baseline"])
def test_version_id_is_optional_where_not_needed(command: str) -> None:
    doc = {k: v for k, v in CONTRACT_COMMAND.items() if k != "version_id"} | {"command": command}
    assert parse_admin_command(json.dumps(doc)).version_id is None


def test_defaults() -> None:
    doc = {"schema_version": 1, "command": "evaluate_now", "request_id": "r", "issued_at": "2026-11-25T17:05:00Z"}
    cmd = parse_admin_command(json.dumps(doc))
    assert cmd.router_id == "default"
    assert cmd.requested_by is None and cmd.reason is None and cmd.signature is None


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"command": "rollback", "version_id": None}, "version_id", "missing_field"),
        ({"command": "pin_baseline", "version_id": None}, "version_id", "missing_field"),
        ({"command": "self_destruct"}, "command", "bad_value"),
        ({"command": None}, "command", "bad_value"),
        ({"request_id": None}, "request_id", "bad_value"),
        ({"request_id": ""}, "request_id", "bad_value"),
        ({"request_id": "r" * 129}, "request_id", "bad_value"),
        ({"request_id": 42}, "request_id", "bad_value"),
        ({"schema_version": 2}, "schema_version", "schema_version"),
        ({"issued_at": "2026-11-25T17:05:00"}, "issued_at", "bad_value"),
        ({"issued_at": 1764090300}, "issued_at", "bad_value"),
        ({"router_id": "a/b"}, "router_id", "bad_value"),
        ({"signature": "not-hex"}, "signature", "bad_value"),
        ({"requested_by": 7}, "requested_by", "bad_value"),
    ],
)
def test_invalid_commands(changes: dict[str, Any], field: str, code: str) -> None:
    doc = {**CONTRACT_COMMAND, **changes}
    with pytest.raises(InvalidAdminCommand) as info:
        parse_admin_command(json.dumps(doc))
    err = info.value
    assert (err.field, err.code) == (field, code)


def test_missing_required_fields() -> None:
    for name in ("schema_version", "command", "request_id", "issued_at"):
        doc = {k: v for k, v in CONTRACT_COMMAND.items() if k != name}
        with pytest.raises(InvalidAdminCommand) as info:
            parse_admin_command(json.dumps(doc))
        expected = "schema_version" if name == "schema_version" else "missing_field"
        assert (info.value.field, info.value.code) == (name, expected)


def test_rejection_still_names_the_request_when_readable() -> None:
    with pytest.raises(InvalidAdminCommand) as info:
        parse_admin_command(json.dumps({**CONTRACT_COMMAND, "issued_at": "soon"}))
    assert info.value.request_id == "r-42" and info.value.command == "rollback"
    with pytest.raises(InvalidAdminCommand) as info:
        parse_admin_command(json.dumps({**CONTRACT_COMMAND, "command": "nope\nx", "request_id": 5}))
    assert info.value.request_id is None and info.value.command is None  # never echo unbounded input


@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"\xff", "not_utf8"), (b"{", "bad_json"), (b'{"a": NaN}', "bad_json"), (b"[]", "not_object")],
)
def test_unreadable_commands(raw: bytes, code: str) -> None:
    with pytest.raises(InvalidAdminCommand) as info:
        parse_admin_command(raw)
    assert info.value.code == code and info.value.request_id is None


def test_oversize_command() -> None:
    with pytest.raises(InvalidAdminCommand) as info:
        parse_admin_command(json.dumps(CONTRACT_COMMAND), max_bytes=50)
    assert info.value.code == "too_large"
