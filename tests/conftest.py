"""Fixtures of every suite: the broker/daemon fixtures of ``fixtures_kafka`` and a hermetic CLI environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import clear_memabrad_env

pytest_plugins = ["fixtures_kafka"]


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MEMABRAD_* variables and no ./config.yaml (cwd is the test's tmp_path): the CLI runs on built-in defaults."""
    clear_memabrad_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
