"""Helpers of the tests that run memabrad's CLI: in process, or as a child process with a clean environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes, to prove that nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``memabrad ARGV...`` in this process: exit code, stdout, stderr."""
    from memabrad.cli.main import main  # imported on use: this module is loaded for every suite

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def clear_memabrad_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every MEMABRAD_* variable of the caller for this test."""
    for name in list(os.environ):
        if name.startswith("MEMABRAD_"):
            monkeypatch.delenv(name)


def clean_environ(**extra: str) -> dict[str, str]:
    """The environment of a child process: the caller's without its MEMABRAD_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMABRAD_")}
    env.update(extra)
    return env
