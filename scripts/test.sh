#!/usr/bin/env bash
# Set up the tests' own virtual environment, run the tests, then (full runs only) check the
# distributions the way a user installs them (scripts/check_dist.sh).
# Usage: bash scripts/test.sh [pytest args...]
#   VENV=path         the tests' environment (default .venv-tests; never .venv, which the README's
#                     main-job command uses: the test-only broken plugin must not land there)
#   CHECK_DIST=0|1    skip / force the distribution check (default: only when no pytest args)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-tests}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install -q --upgrade pip
# torch 2.13.0 first: on the project machines this is a local CPU wheel; an open range would
# pull the CUDA build from the registry.
"$PIP" install -q "torch==2.13.0"
# The development install (docs/install.md) plus the test fixtures.
"$PIP" install -q -r requirements-dev.txt -e tests/plugins/facelib-broken-plugin
# Blender as a Python module, for tests/test_exports_blender.py: the bpy wheel needs Python 3.11
# and numpy<2, so it gets an environment of its own (about 1 GB).
BPY_VENV=${BPY_VENV:-.venv-bpy}
if ! "$BPY_VENV/bin/python" -c "import bpy" 2>/dev/null; then
    python3.11 -m venv "$BPY_VENV"
    "$BPY_VENV/bin/pip" install -q "bpy==5.0.1"
fi
export FACELIB_BPY_PYTHON="$(cd "$BPY_VENV" && pwd)/bin/python"
# fuzz tests replay fixed examples (tests/conftest.py); HYPOTHESIS_PROFILE=explore draws new ones
export HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci}
"$VENV/bin/python" -m pytest "$@"
if [ "${CHECK_DIST:-$([ $# -eq 0 ] && echo 1 || echo 0)}" = 1 ]; then
    PYTHON="$VENV/bin/python" bash scripts/check_dist.sh
fi
