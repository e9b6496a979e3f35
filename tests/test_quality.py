"""ruff and mypy stay clean: part of the suite so CI holds the line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    beside = Path(sys.executable).parent / "ruff"  # the test extra's ruff, not whatever is on PATH
    ruff = str(beside) if beside.exists() else shutil.which("ruff") or "ruff"
    result = subprocess.run([ruff, "check", "cli", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
