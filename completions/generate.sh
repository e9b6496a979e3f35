#!/usr/bin/env bash
# Regenerates the completion scripts from the app; tests/test_completions.py fails when they are stale.
set -euo pipefail
cd "$(dirname "$0")"
for shell in bash zsh fish; do
  _IMGGEN_COMPLETE="source_$shell" imggen > "imggen.$shell"
done
