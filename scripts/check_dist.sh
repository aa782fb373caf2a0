#!/usr/bin/env bash
# The user's path, checked end to end (docs/install.md; scripts/test.sh runs it in CI):
#  1. build every distribution (sdist, then the wheel from that sdist) with `python -m build`;
#     `twine check --strict`; metadata carries only requirements by name (no `@ file://`);
#     sdists and wheels contain their packages (scripts/check_dist_files.py)
#  2. per runtime extra (cpu, cuda, cann, openvino): `pip install --dry-run --report` in a fresh
#     environment leaves exactly one onnxruntime distribution; on x86-64 Linux facelib[openvino]
#     is then installed there and `facelib backends` must name OpenVINOExecutionProvider; on x86-64 Linux facelib[openvino]
#     is then installed there and `facelib backends` must name OpenVINOExecutionProvider
#  3. from the wheels, in a fresh venv: `pip install --find-links WHEELHOUSE "facelib[cpu]"`, the
#     README's main job with no network, no mirror, no ../shared models and no TensorFlow; then
#     "facelib[cpu,EXTRA]" for each device extra: `facelib backends` lists the plugin with its
#     reason for being unavailable; then the example plugin and "facelib[cpu,litert]", which are available
#  4. the same from the sdists (one venv, every extra, built locally with --no-binary)
# Usage: bash scripts/check_dist.sh        PYTHON=python with `build` and `twine` (default: python3)
#   FACELIB_SHARED: the shared folder holding the test photo (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
SHARED=${FACELIB_SHARED:-$ROOT/../shared}
IMAGE=$SHARED/assets/media/images/two_people.jpg
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
PROJECTS=(. models plugins/facelib-tensorrt plugins/facelib-ascend plugins/facelib-sophon plugins/facelib-cambricon
    plugins/facelib-litert examples/plugins/facelib-onnx-reference)
# device extra -> the backend names its plugin registers
declare -A PLUGIN_BACKENDS=([tensorrt]="tensorrt" [ascend]="ascend ascend-cann" [sophon]="sophon" [cambricon]="cambricon")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/facelib-dist.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1
say() { printf '\n== %s\n' "$*"; }
# Anything from the checkout or its environment must not leak into the user's environments.
unset FACELIB_MIRROR FACELIB_HOME FACELIB_BUNDLED PYTHONPATH

say "build ${#PROJECTS[@]} distributions"
for project in "${PROJECTS[@]}"; do
    "$PYTHON" -m build --outdir "$WORK/dist" "$project" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
done
mkdir -p "$WORK/wheels" "$WORK/sdists"
mv "$WORK"/dist/*.whl "$WORK/wheels/" && mv "$WORK"/dist/*.tar.gz "$WORK/sdists/"
ls -l "$WORK/wheels" "$WORK/sdists"
"$PYTHON" -m twine check --strict "$WORK"/wheels/* "$WORK"/sdists/*
"$PYTHON" scripts/check_dist_files.py "$WORK/wheels" "$WORK/sdists"

fresh_venv() {  # fresh_venv DIR: a new environment with an up-to-date pip
    python3 -m venv "$1"
    "$1/bin/pip" install -q --upgrade pip
}

say "runtime extras: exactly one onnxruntime distribution each (pip install --dry-run --report)"
fresh_venv "$WORK/dry"
for pair in cpu: cuda:tensorrt cann:ascend openvino:; do
    runtime=${pair%%:*} device=${pair#*:}
    extras=$runtime${device:+,$device}
    "$WORK/dry/bin/pip" install -q --dry-run --report "$WORK/report-$runtime.json" --find-links "$WORK/wheels" \
        "facelib[$extras]==$VERSION"
    "$PYTHON" scripts/check_dist_files.py --report "$WORK/report-$runtime.json" "$runtime"
done

if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
    say "Intel: facelib[openvino] installed for real (the OpenVINO execution provider runs on x86 CPUs)"
    "$WORK/dry/bin/pip" install -q --find-links "$WORK/wheels" "facelib[openvino]==$VERSION"
    (cd "$WORK" && "$WORK/dry/bin/facelib" backends) | grep onnxruntime
    (cd "$WORK" && "$WORK/dry/bin/facelib" backends --json) >"$WORK/backends.json"
    "$PYTHON" scripts/check_dist_files.py --backends "$WORK/backends.json" --provider OpenVINOExecutionProvider
fi
rm -rf "$WORK/dry"

check_backends() {  # check_backends VENV EXTRA...: the plugins' backends are listed, with a reason
    local venv=$1
    shift
    (cd "$WORK" && "$venv/bin/facelib" backends)
    (cd "$WORK" && "$venv/bin/facelib" backends --json) >"$WORK/backends.json"
    local names=()
    for extra in "$@"; do
        # shellcheck disable=SC2206
        names+=(${PLUGIN_BACKENDS[$extra]})
    done
    "$PYTHON" scripts/check_dist_files.py --backends "$WORK/backends.json" "${names[@]}"
}

main_job() {  # main_job VENV: the README's main job, offline, in an empty cache, away from the checkout
    local venv=$1 home
    home=$(mktemp -d "$WORK/home.XXXX")
    "$venv/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is not None)" ||
        { echo "tensorflow is installed in the user's environment" >&2; exit 1; }
    (cd "$WORK" && FACELIB_HOME=$home FACELIB_OFFLINE=1 "$venv/bin/facelib" headpose "$IMAGE" --draw "$home/out.png") |
        tee "$WORK/headpose.txt"
    grep -q "2 face(s)" "$WORK/headpose.txt" && [ -s "$home/out.png" ]
    [ ! -e "$home/packages/fsanet" ] || { echo "the bundled fsanet was not used" >&2; exit 1; }
}

say "from the wheels: a fresh venv, facelib[cpu], then each device extra"
venv=$WORK/venv-wheels
fresh_venv "$venv"
# without a runtime extra there is no ONNX Runtime: the error must say which extra to add
"$venv/bin/pip" install -q --find-links "$WORK/wheels" "facelib==$VERSION"
if (cd "$WORK" && "$venv/bin/facelib" headpose "$IMAGE" >"$WORK/no-runtime.txt" 2>&1); then
    echo "headpose ran without any onnxruntime build" >&2
    exit 1
fi
cat "$WORK/no-runtime.txt"
grep -q "pip install 'facelib\[cpu\]'" "$WORK/no-runtime.txt"
"$venv/bin/pip" install -q --find-links "$WORK/wheels" "facelib[cpu]==$VERSION"
check_backends "$venv"
main_job "$venv"
for extra in tensorrt ascend sophon cambricon; do
    "$venv/bin/pip" install -q --find-links "$WORK/wheels" "facelib[cpu,$extra]==$VERSION"
    check_backends "$venv" "$extra"
done
"$venv/bin/pip" install -q --find-links "$WORK/wheels" "facelib-onnx-reference==$VERSION"
(cd "$WORK" && "$venv/bin/facelib" backends --json) >"$WORK/backends.json"
"$PYTHON" scripts/check_dist_files.py --backends "$WORK/backends.json" --available onnx-reference
# LiteRT runs here for real (ai-edge-litert wheels: Linux x86_64/aarch64, macOS arm64)
"$venv/bin/pip" install -q --find-links "$WORK/wheels" "facelib[cpu,litert]==$VERSION"
(cd "$WORK" && "$venv/bin/facelib" backends --json) >"$WORK/backends.json"
"$PYTHON" scripts/check_dist_files.py --backends "$WORK/backends.json" --available litert
rm -rf "$venv"

say "from the sdists: one fresh venv, every extra, each of our distributions built from its sdist"
venv=$WORK/venv-sdist
fresh_venv "$venv"
ours=facelib,facelib-models,facelib-tensorrt,facelib-ascend,facelib-sophon,facelib-cambricon,facelib-litert,facelib-onnx-reference
"$venv/bin/pip" install -q --no-binary "$ours" --find-links "$WORK/sdists" \
    "facelib[cpu,tensorrt,ascend,sophon,cambricon,litert]==$VERSION" "facelib-onnx-reference==$VERSION"
check_backends "$venv" tensorrt ascend sophon cambricon
main_job "$venv"
echo "distributions ok"
