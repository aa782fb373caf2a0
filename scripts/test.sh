#!/usr/bin/env bash
# Set up a virtual environment with everything the tests need, then run them.
# Usage: bash scripts/test.sh [pytest args...]      (VENV=path overrides .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install -q --upgrade pip
# torch 2.13.0 first: on the project machines this is a local CPU wheel; an open range would
# pull the CUDA build from the registry.
"$PIP" install -q "torch==2.13.0"
"$PIP" install -q -e ".[dev,convert,media,export,ray]" \
    -e examples/plugins/facelib-onnx-reference \
    -e tests/plugins/facelib-broken-plugin
for plugin in plugins/*/; do
    [ -f "$plugin/pyproject.toml" ] && "$PIP" install -q -e "$plugin"
done
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
exec "$VENV/bin/python" -m pytest "$@"
