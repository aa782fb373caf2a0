"""The default models shipped in facelib-models: provenance, parity with upstream, hub lookup."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import pytest
from headpose_support import REF_KEYS, TOLERANCE_DEG, load_reference

from facelib.models import bundled, hub, registry
from facelib.models.package import ModelPackage
from facelib.processing.fsanet import min_max_stretch
from facelib.tasks.head_pose import HeadPose
from facelib.testing.doubles import load_module

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "models" / "facelib_models"


def _load_script():
    return load_module(ROOT / "scripts" / "build_default_models.py", "build_default_models")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache, offline, no mirror: only the bundled packages can answer."""
    monkeypatch.setenv("FACELIB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACELIB_OFFLINE", "1")
    monkeypatch.delenv("FACELIB_MIRROR", raising=False)
    monkeypatch.delenv(bundled.BUNDLED_ENV, raising=False)
    return tmp_path / "home"


def test_the_installed_bundle_is_this_checkout() -> None:
    root = bundled.bundled_root()
    assert root is not None, "facelib-models is not installed (pip install -r requirements-dev.txt)"
    assert root.resolve() == BUNDLE.resolve()
    assert sorted(p.name for p in BUNDLE.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))) == sorted(
        bundled.BUNDLED_MODELS
    )


@pytest.mark.parametrize("name", bundled.BUNDLED_MODELS)
def test_committed_packages_are_upstream_conversions(name: str) -> None:
    """Card files match their sha256; recipe = registry; every source verified against the upstream sha256."""
    assert _load_script().verify([name]) == []
    record = json.loads((BUNDLE / name / hub.PROVENANCE_FILENAME).read_text(encoding="utf-8"))
    spec = registry.get_package(name)
    for role, artefact in spec.artefacts(use_prebuilt=False).items():
        assert record["artefacts"][role]["sha256"] == artefact.sha256
        assert record["artefacts"][role]["urls"] == list(artefact.urls)
    assert "/work/" not in json.dumps(record)  # no developer machine paths


def test_verify_catches_a_tampered_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    script = _load_script()
    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLE / "ultraface-rfb-320", copy / "ultraface-rfb-320")
    monkeypatch.setattr(script, "BUNDLE", copy)
    assert script.verify(["ultraface-rfb-320"]) == []
    record_path = copy / "ultraface-rfb-320" / hub.PROVENANCE_FILENAME
    record = json.loads(record_path.read_text())
    record["artefacts"]["detector"]["sha256"] = "0" * 64
    record_path.write_text(json.dumps(record))
    assert any("not the upstream file" in p for p in script.verify(["ultraface-rfb-320"]))
    onnx = copy / "ultraface-rfb-320" / "version-RFB-320.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10])
    assert any("ultraface-rfb-320:" in p for p in script.verify(["ultraface-rfb-320"]))


@pytest.mark.parametrize("kind", ["raw", "minmax"])
def test_bundled_fsanet_matches_upstream_tf(reference_dir: Path, kind: str) -> None:
    ref = load_reference(reference_dir)
    crops = ref["crops_bgr_u8"] if kind == "raw" else min_max_stretch(ref["crops_bgr_u8"])
    with HeadPose(BUNDLE / "fsanet") as task:
        mean, per_variant = task.predict_crops(crops.astype(np.float32))
    np.testing.assert_allclose(mean, ref[f"{kind}_ensemble"], atol=TOLERANCE_DEG, rtol=0)
    for variant, key in REF_KEYS.items():
        np.testing.assert_allclose(per_variant[variant], ref[f"{kind}_{key}"], atol=TOLERANCE_DEG, rtol=0)


def test_bundled_landmarker_matches_upstream_mediapipe(reference_dir: Path, media_dir: Path) -> None:
    from facelib.tasks.face_landmarker import FaceLandmarker

    ref = np.load(reference_dir / "mediapipe_face_landmarker_ref.npz")
    with FaceLandmarker(BUNDLE / "mediapipe-face-landmarker", output_blendshapes=True) as lm:
        result = lm.detect(media_dir / "images" / "obama.jpg")
    face = result.faces[0]
    w, h = result.image_size
    assert np.abs(face.landmarks[:, :2] / [w, h] - ref["obama_jpg_landmarks"][0, :, :2]).max() < 1e-3
    assert face.blendshapes is not None
    assert np.abs(face.blendshapes - ref["obama_jpg_blendshapes"][0]).mean() < 5e-3


def test_hub_finds_bundled_packages_first_offline(home: Path) -> None:
    for name in bundled.BUNDLED_MODELS:
        path = hub.ensure_package(name, progress=False)
        assert path == BUNDLE / name
        assert hub.package_path(name) == path
    assert not (home / "packages" / "fsanet").exists()
    listed = {m.name: m.path for m in hub.list_models()}
    assert listed["fsanet"] == BUNDLE / "fsanet" and listed["faceboxes"] is None
    with HeadPose.from_pretrained("fsanet", progress=False) as pose:
        assert pose.package.root == BUNDLE / "fsanet"


def test_bundled_lookup_can_be_turned_off(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bundled.BUNDLED_ENV, "0")
    assert bundled.bundled_dir("fsanet") is None
    with pytest.raises(hub.DownloadError, match="offline"):
        hub.ensure_package("ultraface-rfb-320", progress=False)


def test_explicit_build_requests_skip_the_bundle(home: Path, shared: Path) -> None:
    """force / prebuilt / files mean "build it": the bundle must not answer for them."""
    path = hub.ensure_package("ultraface-rfb-320", mirror=shared / "assets", force=True, progress=False)
    assert path == home / "packages" / "ultraface-rfb-320"
    # once built, a plain call still prefers the bundled package
    assert hub.ensure_package("ultraface-rfb-320", progress=False) == BUNDLE / "ultraface-rfb-320"


def test_a_stale_bundled_package_is_ignored(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.get_package("ultraface-rfb-320")
    monkeypatch.setitem(registry.PACKAGES, spec.name, attrs.evolve(spec, options={"variant": "RFB-640"}))
    with pytest.raises(hub.DownloadError):  # not bundled for this recipe: the hub wants the upstream file
        hub.ensure_package("ultraface-rfb-320", progress=False)


def test_compiled_files_of_bundled_packages_go_to_the_cache(home: Path) -> None:
    from facelib.backends.onnxruntime import OnnxRuntimeBackend

    package = ModelPackage.load(BUNDLE / "ultraface-rfb-320")
    role = next(iter(package.card.files))
    target = package.compiled_path(role, OnnxRuntimeBackend())
    assert target.is_relative_to(home) and not target.is_relative_to(BUNDLE)


def test_missing_convert_extra_names_every_way_out(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: the sentence reads "<purpose> needs <package> ... Install ..., or <mirror>, or <bundle>"."""
    from facelib.errors import MissingDependencyError

    monkeypatch.setenv(bundled.BUNDLED_ENV, "0")
    monkeypatch.setattr(hub, "_missing_modules", lambda modules: list(modules))
    with pytest.raises(MissingDependencyError) as info:
        hub.ensure_package("fsanet", progress=False)
    message = str(info.value)
    assert message.startswith(
        "Building model 'fsanet' from its upstream files needs the optional package 'tensorflow', which is not "
        "installed. Install it with: pip install 'facelib[convert]', or point --mirror / $FACELIB_MIRROR at a mirror"
    )
    assert message.endswith(
        "or use the ready 'fsanet' of the facelib-models distribution "
        "(pip install facelib-models; FACELIB_BUNDLED unset; no --force)"
    )


def test_the_registry_defaults_of_the_main_jobs_are_bundled() -> None:
    from facelib.models.registry import DEFAULT_MODELS

    for task in ("head_pose", "face_detection", "blendshapes"):
        assert DEFAULT_MODELS[task] in bundled.BUNDLED_MODELS
