"""Checks for scripts/check_dist.sh (standard library only; exits 1 with a message on failure).

check_dist_files.py WHEELS_DIR SDISTS_DIR       the built files: names, metadata, contents
check_dist_files.py --report REPORT.json EXTRA  a `pip install --report` leaves exactly the
                                                onnxruntime distribution of runtime EXTRA
check_dist_files.py --backends BACKENDS.json [--available] [--provider EP] NAME...
                                                `facelib backends --json` lists NAME... (unavailable
                                                with a reason, or --available) and a working
                                                onnxruntime that names its execution providers
                                                (among them EP)
"""

from __future__ import annotations

import json
import re
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

#: distribution -> its import package (and, for the models, files that must be inside).
DISTRIBUTIONS = {
    "facelib": "facelib",
    "facelib-models": "facelib_models",
    "facelib-tensorrt": "facelib_tensorrt",
    "facelib-ascend": "facelib_ascend",
    "facelib-sophon": "facelib_sophon",
    "facelib-cambricon": "facelib_cambricon",
    "facelib-litert": "facelib_litert",
    "facelib-onnx-reference": "facelib_onnx_reference",
}
BUNDLED = ("fsanet", "ultraface-rfb-320", "mediapipe-face-landmarker")
#: runtime extra -> the one onnxruntime distribution it must bring (mirrors facelib.backends.ort_build).
RUNTIMES = {
    "cpu": "onnxruntime",
    "cuda": "onnxruntime-gpu",
    "cann": "onnxruntime-cann",
    "openvino": "onnxruntime-openvino",
}
ORT_NAME = re.compile(r"^onnxruntime(-[a-z0-9]+)?$")
ORT_NOT_A_BUILD = {"onnxruntime-extensions", "onnxruntime-genai", "onnxruntime-tools"}


def fail(message: str) -> None:
    print(f"check_dist: {message}", file=sys.stderr)
    sys.exit(1)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_files(wheels: Path, sdists: Path) -> None:
    found_wheels = {_normal(p.name.split("-")[0]): p for p in wheels.glob("*.whl")}
    found_sdists = {_normal(p.name.rsplit("-", 1)[0]): p for p in sdists.glob("*.tar.gz")}
    for dist, package in DISTRIBUTIONS.items():
        wheel, sdist = found_wheels.get(dist), found_sdists.get(dist)
        if wheel is None or sdist is None:
            fail(f"{dist}: wheel {wheel} / sdist {sdist} missing")
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
            metadata = HeaderParser().parsestr(zf.read(meta_name).decode())
        requires = metadata.get_all("Requires-Dist") or []
        direct = [r for r in requires if "@" in r.split(";")[0]]
        if direct:
            fail(f"{wheel.name}: requirements by URL, which no index accepts: {direct}")
        if f"{package}/__init__.py" not in names:
            fail(f"{wheel.name}: no {package}/__init__.py")
        stray = sorted({n.split("/")[0] for n in names} - {package, meta_name.split("/")[0]})
        if stray:
            fail(f"{wheel.name}: unexpected top-level entries {stray}")
        with tarfile.open(sdist) as tf:
            members = tf.getnames()
        top = members[0].split("/")[0]
        for needed in (f"{package}/__init__.py", "pyproject.toml", "PKG-INFO"):
            if f"{top}/{needed}" not in members:
                fail(f"{sdist.name}: no {needed}")
        if dist == "facelib-models":
            for model in BUNDLED:
                for where, listing in ((wheel.name, names), (sdist.name, members)):
                    prefix = "" if where.endswith(".whl") else f"{top}/"
                    files = ["facelib.json", "hub.json"]
                    if model == "mediapipe-face-landmarker":  # the TFLite sources the LiteRT backend runs
                        files += ["face_detector.tflite", "face_landmarks_detector.tflite", "face_blendshapes.tflite"]
                    for file in files:
                        if f"{prefix}{package}/{model}/{file}" not in listing:
                            fail(f"{where}: the bundled model {model} has no {file}")
        print(f"{dist}: {wheel.name}, {sdist.name}: {len(requires)} requirements, all by name")


def check_report(report: Path, extra: str) -> None:
    installs = json.loads(report.read_text())["install"]
    names = sorted(_normal(i["metadata"]["name"]) for i in installs)
    builds = [n for n in names if ORT_NAME.match(n) and n not in ORT_NOT_A_BUILD]
    if builds != [RUNTIMES[extra]]:
        fail(f"facelib[{extra}] installs onnxruntime builds {builds}, expected exactly [{RUNTIMES[extra]!r}]")
    print(f"facelib[{extra}]: {len(names)} distributions, one onnxruntime build: {builds[0]}")


def check_backends(path: Path, names: list[str], available: bool, provider: str | None = None) -> None:
    data = json.loads(path.read_text())
    backends = {b["name"]: b for b in data["backends"]}
    if data.get("failed_plugins"):
        fail(f"plugins failed to load: {data['failed_plugins']}")
    ort = backends.get("onnxruntime")
    if ort is None or not ort["available"] or "execution providers: " not in ort["reason"]:
        fail(f"onnxruntime is not available or does not name its execution providers: {ort}")
    if provider is not None and provider not in ort["reason"].split("execution providers: ", 1)[1].split(", "):
        fail(f"onnxruntime does not offer {provider}: {ort['reason']}")
    print(f"onnxruntime: {ort['reason']}")
    for name in names:
        info = backends.get(name)
        if info is None:
            fail(f"backend {name!r} is not listed: {sorted(backends)}")
        if available and not info["available"]:
            fail(f"backend {name!r} is unavailable: {info['reason']}")
        if not available and (info["available"] or not info["reason"].strip()):
            fail(f"backend {name!r} should be unavailable here with a reason: {info}")
        print(f"{name}: {'available' if info['available'] else 'unavailable: ' + info['reason'][:100]}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--report"]:
        check_report(Path(argv[1]), argv[2])
    elif argv[:1] == ["--backends"]:
        rest = argv[2:]
        provider = None
        if "--provider" in rest:
            at = rest.index("--provider")
            provider = rest[at + 1]
            del rest[at : at + 2]
        available = "--available" in rest
        check_backends(Path(argv[1]), [a for a in rest if a != "--available"], available, provider)
    else:
        check_files(Path(argv[0]), Path(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
