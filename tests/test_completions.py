"""The committed completion scripts are what the app generates."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

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


def _complete(shell: str, words: str) -> list[str]:
    env = {**os.environ, "_IMGGEN_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        env |= {"COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": words, "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    done = subprocess.run([sys.executable, "-m", "imggen"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    if shell != "zsh":
        return done.stdout.splitlines()
    # zsh gets one line `_arguments '*: :(("a" "b\\:c"))'`, a colon escaped
    wrapping = re.compile(r"^_arguments '\*: :\(\(|\)\)'$|\"")
    return [wrapping.sub("", line.strip()).replace("\\\\:", ":") for line in done.stdout.splitlines()]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_offers_model_ids_profiles_and_keys(shell: str) -> None:
    assert run_cli("config", "set", "openai", "api_key", "os.environ/OPENAI_API_KEY").code == 0
    assert run_cli("config", "set", "studio", "provider", "azure").code == 0
    models = _complete(shell, "imggen generate -m gpt-im")
    assert "gpt-image-2" in models and all(m.startswith("gpt-im") for m in models if m)
    assert "dall-e-3" not in models
    assert "bedrock/stability.stable-image-core-v1:1" in _complete(shell, "imggen models show bedrock/stability.st")
    assert {"openai", "studio"} <= set(_complete(shell, "imggen config get "))
    assert "studio" in _complete(shell, "imggen generate --profile st")
    keys = _complete(shell, "imggen config set studio api_")
    assert {"api_key", "api_base", "api_version"} <= set(keys)


def test_completion_with_a_broken_config_completes_nothing_quietly(isolated: Path) -> None:
    (isolated / "config").mkdir()
    (isolated / "config" / "config.toml").write_text("profiles = [\n")
    assert [p for p in _complete("bash", "imggen config get ") if p] == []
