"""Trajectory records from a file or stdin: a JSON array, a single JSON object, or JSONL.

What the CLI publishes must be what the file holds, and every bad record must be named
by its line, so splitting and validation live here, beside the parser the daemon uses.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from memabrad.wire.parse import InvalidMessage, InvalidTrajectory, parse_trajectory

__all__ = ["Record", "RecordFileError", "describe_invalid", "read_records", "read_source", "validate_records"]

_WS_RUN: Final = re.compile(r"[ \t\r\n]*")


class RecordFileError(ValueError):
    """The input cannot be read or split into records; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Record:
    """One trajectory as it will be sent: the line it starts on and its bytes."""

    line: int
    value: bytes


def read_source(path: str) -> tuple[bytes, str]:
    """The bytes of ``path`` (``-``: stdin) and the name to report problems under."""
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        return (stream.read() if stream is not None else sys.stdin.read().encode("utf-8")), "<stdin>"
    try:
        with open(path, "rb") as fh:
            return fh.read(), path
    except OSError as err:
        raise RecordFileError(f"cannot read {path}: {err.strerror or err}") from None


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _array_records(text: str, start: int, name: str) -> Iterator[Record]:
    """Elements of a top-level JSON array with the line each starts on, re-encoded compactly."""
    decoder = json.JSONDecoder()
    n = len(text)

    def skip(i: int) -> int:
        return _WS_RUN.match(text, i).end()  # type: ignore[union-attr]

    line, counted = 1, 0
    pos = skip(start + 1)
    if pos < n and text[pos] == "]":
        pos = skip(pos + 1)
    else:
        while True:
            line += text.count("\n", counted, pos)
            counted = pos
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as err:
                raise RecordFileError(f"{name}:{err.lineno}: invalid JSON: {err.msg}") from None
            yield Record(line, json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
            pos = skip(pos)
            if pos < n and text[pos] == ",":
                pos = skip(pos + 1)
                continue
            if pos < n and text[pos] == "]":
                pos = skip(pos + 1)
                break
            raise RecordFileError(f"{name}:{_line_of(text, pos)}: invalid JSON: expected ',' or ']' in the array")
    if pos < n:
        raise RecordFileError(f"{name}:{_line_of(text, pos)}: invalid JSON: extra data after the array")


def _is_json(chunk: bytes) -> bool:
    try:
        json.loads(chunk)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False
    return True


def _single_document(text: str, start: int) -> bool:
    """True when ``text`` holds exactly one JSON value (e.g. a pretty-printed object)."""
    try:
        _, end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        return False
    return _WS_RUN.match(text, end).end() == len(text)  # type: ignore[union-attr]


def read_records(data: bytes, name: str) -> list[Record]:
    """Split file contents into trajectories: a JSON array, a single JSON object, or JSONL.

    JSONL lines are kept byte for byte (only the line terminator is dropped) so what
    reaches Kafka is what the file holds; array elements are re-encoded compactly.
    Structural problems of a JSON array raise ``RecordFileError``; per-record problems
    are left to validation so all of them get reported.
    """
    data = data.removeprefix(b"\xef\xbb\xbf")
    lines = [(number, line.removesuffix(b"\r")) for number, line in enumerate(data.split(b"\n"), 1)
             if line and not line.isspace()]
    if not lines:
        return []
    first = lines[0][1].lstrip()
    if first.startswith(b"[") or not _is_json(first):
        # An array, or a first line that is no JSON value by itself: maybe one multi-line document.
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None  # per-line validation names the offending lines
        if text is not None:
            start = _WS_RUN.match(text).end()  # type: ignore[union-attr]
            if text.startswith("[", start):
                return list(_array_records(text, start, name))
            if _single_document(text, start):
                return [Record(lines[0][0], data.strip())]
    return [Record(number, line) for number, line in lines]


def describe_invalid(err: InvalidMessage) -> str:
    """``field: reason`` without repeating the field when the reason already starts with it."""
    if not err.field or err.reason.startswith(f"{err.field}:"):
        return err.reason
    return f"{err.field}: {err.reason}"


def validate_records(records: list[Record], name: str, max_bytes: int) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """(key, value) pairs to send, keyed by ``router_id``, and one ``FILE:LINE: field: reason`` per invalid record."""
    pairs: list[tuple[bytes, bytes]] = []
    errors: list[str] = []
    keys: dict[str, bytes] = {}
    with _gc_paused():
        for rec in records:
            try:
                router_id = parse_trajectory(rec.value, max_bytes=max_bytes).router_id
            except InvalidTrajectory as err:
                errors.append(f"{name}:{rec.line}: {describe_invalid(err)}")
                continue
            key = keys.get(router_id)
            if key is None:
                key = keys[router_id] = router_id.encode("utf-8")
            pairs.append((key, rec.value))
    return pairs, errors


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: the models are acyclic garbage, and full collections over the
    growing list of records would otherwise cost a large share of the validation time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
