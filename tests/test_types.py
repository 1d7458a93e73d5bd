"""The package type-checks (mypy, settings in pyproject.toml): its hints are what the code does."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_type_checks() -> None:
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
                                str(ROOT / ".mypy_cache"), str(ROOT / "memabrad")])
    assert status == 0, out + err
