"""The short soak: steady load, a broker restart, duplicates and invalid records, everything accounted for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_short_soak_accounts_for_every_trajectory(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "0.4", "--rate", "400",
                          "--out", str(out)], capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASS  every trajectory accounted for" in res.stdout
    assert out.is_file()
