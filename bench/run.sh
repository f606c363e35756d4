#!/usr/bin/env bash
# The whole comparison in one command: bench/run.sh [--quick] [--only router,nginx] ...
# Makes the project's venv if there is none, then runs `python -m bench`, which installs
# wrk, nginx (apt-get) and LiteLLM (its own venv under bench/.cache) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q -e '.[dev]'
fi
exec .venv/bin/python -m bench "$@"
