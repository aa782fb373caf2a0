"""Regenerate the default model packages shipped in the ``facelib-models`` distribution.

    python scripts/build_default_models.py [--mirror DIR|URL] [--offline]
    python scripts/build_default_models.py --verify      # check the committed packages only

For every name in :data:`facelib.models.bundled.BUNDLED_MODELS` this runs the hub with the
bundled lookup off, in a throw-away cache, forcing a conversion from the *upstream* files
(``prebuilt=False``: FSA-Net from its TF graphs, MediaPipe from ``face_landmarker.task``, never
from prebuilt ONNX).  The hub downloads each upstream file (or takes it from ``--mirror``),
refuses it unless its size and sha256 equal the registry's (the values upstream published), runs
facelib's own converter, validates the package against its card and writes ``hub.json``
(recipe, source sha256s, licences, URLs).  The package then replaces
``models/facelib_models/<name>/``.  Needs the ``convert`` extra (TensorFlow, tf2onnx).

``--verify`` rebuilds nothing: it checks that every committed package loads, that each file
matches the sha256 in its card, that its recipe equals the registry's and that every source in
its ``hub.json`` was verified against the registry's upstream sha256.  CI runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "models" / "facelib_models"


def _sanitise(record: dict[str, object]) -> dict[str, object]:
    """Keep provenance, drop what only describes the developer's machine (a local mirror path)."""
    mirror = record.get("mirror")
    if isinstance(mirror, str) and not mirror.startswith(("http://", "https://")):
        record["mirror"] = "a local mirror (files verified against the registry's sha256 like downloads)"
    record["bundled"] = {
        "distribution": "facelib-models",
        "made_by": "scripts/build_default_models.py (ensure_package(prebuilt=False, force=True))",
    }
    return record


def build(names: list[str], mirror: str | None, offline: bool) -> None:
    os.environ["FACELIB_BUNDLED"] = "0"
    with tempfile.TemporaryDirectory(prefix="facelib-default-models-") as home:
        os.environ["FACELIB_HOME"] = home
        from facelib.models.hub import PROVENANCE_FILENAME, ensure_package

        for name in names:
            built = ensure_package(name, mirror=mirror, offline=offline, prebuilt=False, force=True, progress=True)
            record = json.loads((built / PROVENANCE_FILENAME).read_text(encoding="utf-8"))
            (built / PROVENANCE_FILENAME).write_text(json.dumps(_sanitise(record), indent=2) + "\n", encoding="utf-8")
            target = BUNDLE / name
            staging = BUNDLE / f".{name}.new"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(built, staging, ignore=shutil.ignore_patterns(".facelib-cache"))
            old = BUNDLE / f".{name}.old"
            if target.exists():
                os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
            print(f"{name}: {target.relative_to(ROOT)}", file=sys.stderr)


def verify(names: list[str]) -> list[str]:
    """Problems with the committed packages (empty when all is well)."""
    from facelib.models import registry
    from facelib.models.hub import PROVENANCE_FILENAME
    from facelib.models.package import ModelPackage

    problems = []
    for name in names:
        path = BUNDLE / name
        try:
            ModelPackage.load(path).check()
            record = json.loads((path / PROVENANCE_FILENAME).read_text(encoding="utf-8"))
        except Exception as exc:  # noqa: BLE001 - reported, the script exits non-zero
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        spec = registry.get_package(name)
        if record.get("recipe") != json.loads(json.dumps(spec.recipe(), sort_keys=True, default=str)):
            problems.append(f"{name}: recipe differs from the registry; regenerate it")
        if record.get("prebuilt") is not False:
            problems.append(f"{name}: not converted from the upstream files")
        for role, artefact in spec.artefacts(use_prebuilt=False).items():
            made_from = record.get("artefacts", {}).get(role, {})
            if not made_from.get("verified") or made_from.get("sha256") != artefact.sha256:
                problems.append(f"{name}: source {role!r} is not the upstream file (sha256 {artefact.sha256})")
    return problems


def main(argv: list[str] | None = None) -> int:
    from facelib.models.bundled import BUNDLED_MODELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(BUNDLED_MODELS), help="default: all bundled models")
    parser.add_argument("--mirror", help="local directory or URL laid out like a facelib mirror")
    parser.add_argument("--offline", action="store_true", help="never use the network")
    parser.add_argument("--verify", action="store_true", help="only check the committed packages")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BUNDLED_MODELS))
    if unknown:
        parser.error(f"not bundled: {', '.join(unknown)} (bundled: {', '.join(BUNDLED_MODELS)})")
    if not args.verify:
        build(args.names, args.mirror, args.offline)
    problems = verify(args.names)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"ok: {', '.join(args.names)}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
