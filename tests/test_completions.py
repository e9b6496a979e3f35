"""The committed completion scripts are what the app generates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMPLETIONS = Path(__file__).resolve().parent.parent / "completions"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_up_to_date(shell: str) -> None:
    env = {**os.environ, "_IMGGEN_COMPLETE": f"source_{shell}"}
    script = subprocess.run([sys.executable, "-m", "imggen"], env=env, capture_output=True, text=True).stdout
    assert script.strip(), "no completion script generated"
    assert (COMPLETIONS / f"imggen.{shell}").read_text() == script, "stale: run completions/generate.sh"


def test_completion_offers_the_generate_options() -> None:
    env = {**os.environ, "_IMGGEN_COMPLETE": "complete_bash", "COMP_WORDS": "imggen generate --dry", "COMP_CWORD": "2"}
    out = subprocess.run([sys.executable, "-m", "imggen"], env=env, capture_output=True, text=True).stdout
    assert "--dry-run" in out
