"""`memabrad demo` (the README's first command) finishes well within two minutes and prints a promotion."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from cli_helpers import clean_environ

pytestmark = pytest.mark.e2e


def test_demo_prints_a_promotion_within_two_minutes() -> None:
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "memabrad", "demo"], capture_output=True, text=True, timeout=120,
                         env=clean_environ())
    elapsed = time.monotonic() - started
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PROMOTED router version" in res.stdout
    assert "reward_delta" in res.stdout and "/metrics" in res.stdout
    assert elapsed < 120
