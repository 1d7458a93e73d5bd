"""A version's ``meta.json`` and the checks that make a version directory trustworthy.

``meta.json`` holds ``version_id``, ``created_at`` (RFC 3339, ``Z``),
``report_id``, ``router_id``, ``files`` (``{name: sha256 hex}``), ``sha256``
(see :func:`model_sha256`) and the caller's ``extra`` keys at top level.
Verification needs only the directory itself, so it works on any copy of a
version (which is what serving clients load), not just on the store.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memabrad.store.atomic import describe_oserror, read_json
from memabrad.store.errors import CorruptFileError, CorruptVersionError, UnknownVersionError
from memabrad.store.layout import META_FILE, check_file_name

__all__ = [
    "CORE_META_KEYS",
    "VersionMeta",
    "format_rfc3339",
    "model_sha256",
    "read_version_meta",
    "verify_version_dir",
]

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CORE_META_KEYS = frozenset(
    {"version_id", "created_at", "report_id", "router_id", "files", "sha256", "corrupt"}
)


def format_rfc3339(dt: datetime) -> str:
    """UTC RFC 3339 with ``Z``; microseconds only when present (keeps ids and stamps short)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"datetime must carry a time zone, got naive {dt.isoformat()}")
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if dt.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def model_sha256(file_hashes: Mapping[str, str]) -> str:
    """The version's ``sha256``: one digest standing for all of its model data.

    With exactly one model file it is that file's sha256, so it can be checked
    with ``sha256sum``. Otherwise it is the sha256 of the concatenation, in
    sorted file-name order, of ``name + "\\0" + sha256hex(file) + "\\n"``.
    """
    if not file_hashes:
        raise ValueError("a router version needs at least one model file")
    if len(file_hashes) == 1:
        return next(iter(file_hashes.values()))
    digest = hashlib.sha256()
    for name in sorted(file_hashes):
        digest.update(f"{name}\0{file_hashes[name]}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class VersionMeta:
    """A version's ``meta.json``; ``corrupt`` is set (and the rest may be empty) when it is unreadable."""

    version_id: str
    created_at: str
    report_id: str | None
    router_id: str
    files: dict[str, str] = field(default_factory=dict)
    sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    corrupt: str | None = None

    @property
    def idempotency_key(self) -> str | None:
        """The key a writer used to make :meth:`RouterVersionStore.save_version` idempotent."""
        key = self.extra.get("idempotency_key")
        return key if isinstance(key, str) else None

    def to_dict(self) -> dict[str, Any]:
        """The ``meta.json`` object: core keys plus ``extra`` at top level (``corrupt`` only when set)."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            version_id=self.version_id,
            created_at=self.created_at,
            report_id=self.report_id,
            router_id=self.router_id,
            files=dict(self.files),
            sha256=self.sha256,
        )
        if self.corrupt is not None:
            out["corrupt"] = self.corrupt
        return out

    @classmethod
    def from_dict(cls, data: Any) -> VersionMeta:
        """Parse a ``meta.json`` object; raise ``ValueError`` saying what is wrong with it."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        for key in ("version_id", "created_at", "router_id", "sha256"):
            if not isinstance(data.get(key), str):
                raise ValueError(f"field {key!r} is missing or not a string")
        report_id = data.get("report_id")
        if report_id is not None and not isinstance(report_id, str):
            raise ValueError("field 'report_id' is not a string")
        files = data.get("files")
        if not isinstance(files, dict) or not files:
            raise ValueError("field 'files' is missing or empty")
        for name, digest in files.items():
            check_file_name(name)
            if not isinstance(digest, str) or not _SHA256_RE.match(digest):
                raise ValueError(f"files[{name!r}] is not a sha256 hex digest")
        extra = {k: v for k, v in data.items() if k not in CORE_META_KEYS}
        return cls(
            version_id=data["version_id"],
            created_at=data["created_at"],
            report_id=report_id,
            router_id=data["router_id"],
            files=dict(files),
            sha256=data["sha256"],
            extra=extra,
        )


def read_version_meta(vdir: Path) -> VersionMeta:
    """A version directory's ``meta.json``, checked for consistency (files not hashed)."""
    version_id = vdir.name
    meta_path = vdir / META_FILE
    try:
        raw = read_json(meta_path)
    except FileNotFoundError:
        raise CorruptVersionError(meta_path, "meta.json is missing", version_id=version_id) from None
    except CorruptFileError as exc:
        raise CorruptVersionError(meta_path, exc.reason, version_id=version_id) from exc
    except OSError as exc:
        raise CorruptVersionError(meta_path, describe_oserror(exc), version_id=version_id) from exc
    try:
        meta = VersionMeta.from_dict(raw)
    except ValueError as exc:
        raise CorruptVersionError(meta_path, str(exc), version_id=version_id) from exc
    if meta.version_id != version_id:
        raise CorruptVersionError(meta_path, f"meta.json says version_id {meta.version_id!r}", version_id=version_id)
    if model_sha256(meta.files) != meta.sha256:
        raise CorruptVersionError(meta_path, "sha256 does not match the files' digests", version_id=version_id)
    return meta


def verify_version_dir(vdir: Path) -> tuple[VersionMeta, dict[str, bytes]]:
    """Meta and model files of a version directory, every file checked against its sha256.

    Works on any copy of a version directory, which is what serving clients load.
    """
    vdir = Path(vdir)
    if not vdir.is_dir():
        raise UnknownVersionError(vdir.name, vdir.parent)
    meta = read_version_meta(vdir)
    version_id = meta.version_id
    out: dict[str, bytes] = {}
    for name, expected in sorted(meta.files.items()):
        path = vdir / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CorruptVersionError(path, "model file is missing", version_id=version_id) from None
        except OSError as exc:
            raise CorruptVersionError(path, describe_oserror(exc), version_id=version_id) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise CorruptVersionError(
                path,
                f"sha256 mismatch: meta.json says {expected}, file has {actual} ({len(data)} bytes)",
                version_id=version_id,
            )
        out[name] = data
    return meta, out
