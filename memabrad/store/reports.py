"""``training-reports/``: one JSON report per evaluation, kept for audit and ``memabrad report``.

Reports are plain JSON objects owned by the evaluator; the store only checks
that the id is safe as a file name and writes atomically. Listing never raises
on a damaged report, so one bad file cannot hide the history.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memabrad.store.atomic import atomic_write_bytes, dumps_json, read_json
from memabrad.store.errors import CorruptFileError, UnknownReportError
from memabrad.store.layout import StoreLayout, check_report_id
from memabrad.store.lock import StoreLock

__all__ = ["TrainingReports", "report_sort_key"]


def report_sort_key(report: dict[str, Any]) -> tuple[float, str]:
    """Sort by ``created_at`` then id; a missing or unparsable time sorts oldest instead of failing."""
    created = report.get("created_at")
    ts = -math.inf
    if isinstance(created, str):
        try:
            dt = datetime.fromisoformat(created)
        except ValueError:
            pass
        else:
            ts = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    return (ts, str(report.get("report_id", "")))


@dataclass
class TrainingReports:
    """Save, load and list one router's training reports."""

    layout: StoreLayout
    write_lock: StoreLock

    def report_path(self, report_id: str) -> Path:
        """Where a report with this id is stored (``ValueError`` for an id unsafe as a file name)."""
        return self.layout.reports_dir / f"{check_report_id(report_id)}.json"

    def save_report(self, report: Mapping[str, Any]) -> Path:
        """Write ``training-reports/<report_id>.json`` atomically; saving the same id again overwrites."""
        if not isinstance(report, Mapping):
            raise TypeError(f"report must be a mapping, got {type(report).__name__}")
        path = self.layout.reports_dir / f"{check_report_id(report.get('report_id'))}.json"
        data = dumps_json(dict(report))
        with self.write_lock:
            atomic_write_bytes(path, data)
        return path

    def load_report(self, report_id: str) -> dict[str, Any]:
        """A saved report; :class:`UnknownReportError` if absent, :class:`CorruptFileError` if unreadable."""
        try:
            path = self.report_path(report_id)
        except ValueError:
            raise UnknownReportError(str(report_id)) from None
        try:
            data = read_json(path)
        except FileNotFoundError:
            raise UnknownReportError(report_id, path) from None
        if not isinstance(data, dict):
            raise CorruptFileError(path, f"expected a JSON object, got {type(data).__name__}")
        return data

    def list_reports(self) -> list[dict[str, Any]]:
        """All reports, newest first by ``created_at`` then id.

        An unreadable report is listed as ``{"report_id": ..., "corrupt": reason}``.
        """
        try:
            entries = list(os.scandir(self.layout.reports_dir))
        except FileNotFoundError:
            return []
        reports: list[dict[str, Any]] = []
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(".json") or not entry.is_file():
                continue
            report_id = entry.name[: -len(".json")]
            try:
                data = read_json(entry.path)
                if not isinstance(data, dict):
                    raise CorruptFileError(entry.path, f"expected a JSON object, got {type(data).__name__}")
            except (CorruptFileError, OSError) as exc:
                reports.append({"report_id": report_id, "corrupt": str(exc)})
                continue
            reports.append(data)
        reports.sort(key=report_sort_key, reverse=True)
        return reports

    def last_report(self) -> dict[str, Any] | None:
        """The newest readable report, or None."""
        for report in self.list_reports():
            if "corrupt" not in report:
                return report
        return None
