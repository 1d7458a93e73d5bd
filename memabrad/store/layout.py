"""Where a router's store keeps each file, and which ids and names are safe to put there.

Ids and model file names become path components, so they are checked against
strict patterns before any path is built: a hostile or mistyped id can never
reach outside the router's directory. See :mod:`memabrad.store.versions` for
the full layout (docs/contract.md §9).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FILE_NAME_RE",
    "META_FILE",
    "REPORT_ID_RE",
    "ROUTER_ID_RE",
    "TMP_PREFIX",
    "VERSION_ID_RE",
    "StoreLayout",
    "check_file_name",
    "check_report_id",
    "check_router_id",
    "version_sort_key",
]

ROUTER_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
VERSION_ID_RE = re.compile(r"^(\d{8}-\d{6})(?:-([1-9]\d{0,8}))?$")
REPORT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
META_FILE = "meta.json"
TMP_PREFIX = ".tmp-"


def check_router_id(router_id: str) -> str:
    """Return ``router_id`` if it is safe as a directory name, else raise ``ValueError``."""
    if not isinstance(router_id, str) or not ROUTER_ID_RE.match(router_id) or router_id in {".", ".."}:
        raise ValueError(f"invalid router_id {router_id!r}: expected 1-64 chars of [A-Za-z0-9._-]")
    return router_id


def check_report_id(report_id: Any) -> str:
    """Return ``report_id`` if it is safe as a file name, else raise ``ValueError``."""
    if not isinstance(report_id, str) or not REPORT_ID_RE.match(report_id):
        raise ValueError(
            f"invalid report_id {report_id!r}: expected 1-128 chars of [A-Za-z0-9._:-], "
            "starting with a letter or digit"
        )
    return report_id


def check_file_name(name: Any) -> str:
    """Return a model file name if it is a plain name that cannot shadow ``meta.json``, else raise."""
    if not isinstance(name, str) or not FILE_NAME_RE.match(name) or name == META_FILE:
        raise ValueError(
            f"invalid model file name {name!r}: expected a plain name of [A-Za-z0-9._-] "
            f"(not starting with '.', not {META_FILE!r})"
        )
    return name


def version_sort_key(version_id: str) -> tuple[str, int]:
    """Order ids by time, then suffix numerically (``-10`` after ``-9``, which plain sorting breaks)."""
    match = VERSION_ID_RE.match(version_id)
    if match is None:
        return ("", 0)
    return (match.group(1), int(match.group(2) or 1))


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one router's store, derived from ``base_dir`` and a checked ``router_id``.

    Every component asks this one object for its paths, so the layout is
    defined in a single place and cannot drift between them.
    """

    base_dir: Path
    router_id: str

    def __post_init__(self) -> None:
        check_router_id(self.router_id)

    @property
    def router_dir(self) -> Path:
        """``<base_dir>/<router_id>``: everything of this router lives below it."""
        return self.base_dir / self.router_id

    @property
    def versions_root(self) -> Path:
        return self.router_dir / "router-versions"

    @property
    def versions_dir(self) -> Path:
        return self.versions_root / "versions"

    @property
    def current_path(self) -> Path:
        return self.versions_root / "current.json"

    @property
    def pinned_baseline_path(self) -> Path:
        return self.versions_root / "pinned-baseline.json"

    @property
    def control_path(self) -> Path:
        return self.router_dir / "control.json"

    @property
    def reports_dir(self) -> Path:
        return self.router_dir / "training-reports"

    @property
    def seen_trajectories_path(self) -> Path:
        return self.router_dir / "seen-trajectories.json"

    @property
    def case_index_path(self) -> Path:
        return self.router_dir / "case-index.json"

    @property
    def lock_path(self) -> Path:
        return self.router_dir / ".store.lock"

    @property
    def daemon_lock_path(self) -> Path:
        return self.router_dir / "daemon.lock"
