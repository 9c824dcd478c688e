#!/usr/bin/env bash
# Install avsynth and everything its tests exercise (the README set-up step). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[all]"
