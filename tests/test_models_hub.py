"""ensure_package end to end (fetch -> convert -> cache), the registry's facts, and the CLI."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import socket
import sys
import threading
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from mirror_server import MirrorServer

from facelib.cli import main
from facelib.errors import ConversionError, DownloadError, MissingDependencyError, ModelError
from facelib.models import hub, registry
from facelib.models.card import ModelCard, ModelFile
from facelib.models.fetch import LicenceNotAcceptedError, cached_path
from facelib.models.package import ModelPackage, read_onnx_specs, sha256_file

REL = "models/ultraface/version-RFB-320.onnx"
CALLS: list[dict[str, Any]] = []


def _copy_converter(
    sources: Mapping[str, Path], output_dir: Path, *, progress: bool = False, **options: Any
) -> ModelPackage:
    """Test-only converter: copy the UltraFace ONNX and write its card (like a trivial converter)."""
    CALLS.append({"sources": dict(sources), "options": options})
    if options.get("fail"):
        raise RuntimeError("converter exploded")
    output_dir.mkdir(parents=True)
    shutil.copyfile(sources["detector"], output_dir / "detector.onnx")
    inputs, outputs = read_onnx_specs(output_dir / "detector.onnx")
    card = ModelCard(
        name="test-ultraface",
        task="face_detection",
        variant=str(options.get("variant", "RFB-320")),
        licence="MIT",
        source={"sources": {r: {"file": p.name, "sha256": sha256_file(p)} for r, p in sources.items()}},
        files={
            "detector": ModelFile(
                "detector.onnx", inputs=inputs, outputs=outputs, sha256=sha256_file(output_dir / "detector.onnx")
            )
        },
    )
    card.write(output_dir)
    return ModelPackage.load(output_dir)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FACELIB_HOME", str(tmp_path / "home"))
    for var in ("FACELIB_MIRROR", "FACELIB_OFFLINE", "FACELIB_ACCEPT_LICENCE"):
        monkeypatch.delenv(var, raising=False)
    module = types.ModuleType("facelib_test_converter")
    module.build_package = _copy_converter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "facelib_test_converter", module)
    real = registry.get_artefact("ultraface-rfb-320-onnx")
    monkeypatch.setitem(registry.ARTEFACTS, "test-rfb320", attrs.evolve(real, name="test-rfb320", urls=()))
    spec = registry.PackageSpec(
        name="test-ultraface",
        task="face_detection",
        description="test-only package built by a test converter",
        converter="facelib_test_converter:build_package",
        sources={"detector": "test-rfb320"},
        options={"variant": "RFB-320"},
    )
    monkeypatch.setitem(registry.PACKAGES, "test-ultraface", spec)
    CALLS.clear()
    yield


@pytest.fixture()
def server(shared: Path) -> Iterator[MirrorServer]:
    with MirrorServer(shared / "assets") as srv:
        yield srv


def test_ensure_package_end_to_end_and_cache_hit(server: MirrorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    path = hub.ensure_package("test-ultraface", mirror=server.url, progress=False)
    assert path == hub.packages_dir() / "test-ultraface"
    package = ModelPackage.load(path).check()
    assert package.card.task == "face_detection"
    record = json.loads((path / hub.PROVENANCE_FILENAME).read_text())
    art = record["artefacts"]["detector"]
    assert art["sha256"] == registry.get_artefact("test-rfb320").sha256 and art["verified"] is True
    assert record["recipe"]["converter"] == "facelib_test_converter:build_package"
    assert record["mirror"] == server.url
    assert len(CALLS) == 1 and CALLS[0]["options"] == {"variant": "RFB-320"}
    assert not [p for p in hub.packages_dir().iterdir() if p.name.startswith(".")]  # no temp dirs left
    # cache hit: no request, no conversion, no network at all
    monkeypatch.setattr(socket.socket, "connect", lambda *a: pytest.fail("network used on a cache hit"))
    assert hub.ensure_package("test-ultraface", mirror=server.url, progress=False) == path
    assert hub.ensure_package("test-ultraface", offline=True) == path
    assert len(CALLS) == 1 and len(server.gets(REL)) == 1
    assert hub.package_path("test-ultraface") == path
    assert hub.remove("test-ultraface") is True
    assert not path.exists()
    with pytest.raises(ModelError, match="facelib models fetch test-ultraface"):
        hub.package_path("test-ultraface")


def test_changed_recipe_rebuilds(server: MirrorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.ensure_package("test-ultraface", mirror=server.url, progress=False)
    spec = registry.PACKAGES["test-ultraface"]
    monkeypatch.setitem(registry.PACKAGES, "test-ultraface", attrs.evolve(spec, options={"variant": "other"}))
    path = hub.ensure_package("test-ultraface", mirror=server.url, progress=False)
    assert ModelPackage.load(path).card.variant == "other"
    assert len(CALLS) == 2 and len(server.gets(REL)) == 1  # the download was reused


def test_concurrent_ensure_package_converts_once(server: MirrorServer) -> None:
    server.delay_per_chunk = 0.01
    results: list[Any] = []

    def work() -> None:
        try:
            results.append(hub.ensure_package("test-ultraface", mirror=server.url, progress=False))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 3 and all(isinstance(r, Path) for r in results), results
    assert len(CALLS) == 1 and len(server.gets(REL)) == 1


def test_converter_failure_leaves_no_package(server: MirrorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.PACKAGES["test-ultraface"]
    monkeypatch.setitem(registry.PACKAGES, "test-ultraface", attrs.evolve(spec, options={"fail": True}))
    with pytest.raises(ConversionError, match="converting model 'test-ultraface' failed: RuntimeError"):
        hub.ensure_package("test-ultraface", mirror=server.url, progress=False)
    assert [p.name for p in hub.packages_dir().iterdir()] == []


def test_missing_convert_extra_fails_before_download(server: MirrorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.PACKAGES["test-ultraface"]
    monkeypatch.setitem(
        registry.PACKAGES, "test-ultraface", attrs.evolve(spec, needs=("facelib_surely_missing_module",))
    )
    with pytest.raises(MissingDependencyError, match=r"facelib\[convert\]"):
        hub.ensure_package("test-ultraface", mirror=server.url, progress=False)
    assert server.requests == []


def test_prebuilt_sources_used_from_a_mirror(server: MirrorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the convert extra, a mirror's prebuilt ONNX still yields a package."""
    real = registry.get_artefact("ultraface-rfb-320-onnx")
    monkeypatch.setitem(
        registry.ARTEFACTS,
        "test-upstream-only",
        attrs.evolve(real, name="test-upstream-only", mirror_path="models/absent/x.pb", urls=()),
    )
    spec = attrs.evolve(
        registry.PACKAGES["test-ultraface"],
        sources={"detector": "test-upstream-only"},
        prebuilt={"detector": "test-rfb320"},
        needs=("facelib_surely_missing_module",),
    )
    monkeypatch.setitem(registry.PACKAGES, "test-ultraface", spec)
    # no mirror: conversion would need the extra, and the error says a mirror would do
    with pytest.raises(MissingDependencyError, match="prebuilt ONNX"):
        hub.ensure_package("test-ultraface", progress=False)
    path = hub.ensure_package("test-ultraface", mirror=server.url, progress=False)
    record = json.loads((path / hub.PROVENANCE_FILENAME).read_text())
    assert record["prebuilt"] is True
    assert [r["path"] for r in server.requests] == ["/" + REL]


def test_mirror_without_prebuilt_files_falls_back_to_conversion(
    server: MirrorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = registry.get_artefact("ultraface-rfb-320-onnx")
    monkeypatch.setitem(
        registry.ARTEFACTS,
        "test-prebuilt-absent",
        attrs.evolve(real, name="test-prebuilt-absent", mirror_path="models/absent/x.onnx", urls=()),
    )
    spec = attrs.evolve(registry.PACKAGES["test-ultraface"], prebuilt={"detector": "test-prebuilt-absent"})
    monkeypatch.setitem(registry.PACKAGES, "test-ultraface", spec)
    path = hub.ensure_package("test-ultraface", mirror=server.url, progress=False)
    assert json.loads((path / hub.PROVENANCE_FILENAME).read_text())["prebuilt"] is False
    with pytest.raises(DownloadError, match="HTTP 404"):  # asked for explicitly: no fallback
        hub.ensure_package("test-ultraface", mirror=server.url, progress=False, prebuilt=True, force=True)


def test_unknown_and_manual_models(server: MirrorServer) -> None:
    with pytest.raises(ModelError, match=r"unknown model 'nope'.*fsanet"):
        hub.ensure_package("nope")
    if importlib.util.find_spec("facelib.models.convert.fomm") is None:
        with pytest.raises(ConversionError, match="not part of this facelib"):
            hub.ensure_package("fomm-vox-256", progress=False)
        return
    with pytest.raises(LicenceNotAcceptedError):
        hub.ensure_package("fomm-vox-256", mirror=server.url, progress=False)


def test_hand_downloaded_file(models_dir: Path, tmp_path: Path) -> None:
    good = models_dir / "ultraface" / "version-RFB-320.onnx"
    path = hub.ensure_package("test-ultraface", files={"detector": good}, offline=True, progress=False)
    assert ModelPackage.load(path).check()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(good.read_bytes()[:1000])
    hub.remove("test-ultraface", downloads=True)
    with pytest.raises(DownloadError, match="truncated"):
        hub.ensure_package("test-ultraface", files={"detector": bad}, offline=True, progress=False)


# --- the registry's facts -------------------------------------------------------------------

EXPECTED_PACKAGES = {
    "fsanet": ("head_pose", "fsanet", {"capsule", "var_capsule", "noS_capsule"}),
    "ultraface-rfb-320": ("face_detection", "ultraface", {"detector"}),
    "ultraface-rfb-640": ("face_detection", "ultraface", {"detector"}),
    "mediapipe-face-landmarker": ("blendshapes", "mediapipe", {"task"}),
    "faceboxes": ("face_detection", "faceboxes", {"weights"}),
    "faceformer-vocaset": ("audio2face", "faceformer", {"checkpoint"}),
    "faceformer-biwi": ("audio2face", "faceformer", {"checkpoint"}),
    "fomm-vox-256": ("motion_transfer", "fomm", {"checkpoint"}),
    "fomm-taichi-256": ("motion_transfer", "fomm", {"checkpoint"}),
}


def test_registry_packages() -> None:
    builtin = {k: v for k, v in registry.PACKAGES.items() if not k.startswith("test-")}
    assert set(builtin) == set(EXPECTED_PACKAGES)
    for name, (task, conv, roles) in EXPECTED_PACKAGES.items():
        spec = builtin[name]
        assert spec.task == task
        assert spec.converter == f"facelib.models.convert.{conv}:build_package"
        assert set(spec.sources) == roles
    assert registry.PACKAGES["ultraface-rfb-640"].options == {"variant": "RFB-640"}
    assert registry.PACKAGES["faceformer-biwi"].options == {"dataset": "biwi"}
    assert registry.PACKAGES["fomm-taichi-256"].options == {"config": "taichi-256"}
    assert set(registry.PACKAGES["mediapipe-face-landmarker"].prebuilt) == {"detector", "landmarks", "blendshapes"}
    for name in ("faceformer-vocaset", "faceformer-biwi", "fomm-vox-256", "fomm-taichi-256"):
        assert builtin[name].non_commercial, name
    for name in ("fsanet", "ultraface-rfb-320", "mediapipe-face-landmarker", "faceboxes"):
        assert not builtin[name].non_commercial and not builtin[name].manual, name


def test_registry_matches_shared_manifest(shared: Path) -> None:
    with open(shared / "MANIFEST.tsv", newline="") as fh:
        manifest = {row["path"]: row for row in csv.DictReader(fh, delimiter="\t")}
    checked = 0
    for art in registry.ARTEFACTS.values():
        if art.name.startswith("test-"):
            continue
        row = manifest.get(f"assets/{art.mirror_path}")
        if row is None:
            assert art.manual, f"{art.name} is neither in the shared mirror nor marked manual"
            continue
        assert (art.sha256, art.size) == (row["sha256"], int(row["bytes"])), art.name
        assert (shared / "assets" / art.mirror_path).is_file()
        checked += 1
    assert checked == 13  # fsanet 3 pb + 3 onnx, ultraface 2, mediapipe task + 3 onnx, faceboxes
    vox = registry.get_artefact("fomm-vox-checkpoint")
    assert vox.sha256 == "abb41ab1f279f26326c0d6e4d20702de6658364665aa1313daa7a63e89ea2b23"
    assert vox.size == 728_766_691
    for art in registry.ARTEFACTS.values():
        for url in art.urls:
            assert url.startswith("https://")
            if "githubusercontent" in url:
                assert len(url.split("/")[5]) == 40, f"{url} is not pinned to a full commit"


# --- packages whose real converters exist (after the branches are merged) -----------------


@pytest.mark.parametrize("name", ["ultraface-rfb-320", "fsanet", "mediapipe-face-landmarker"])
def test_real_converter_from_local_mirror(name: str, shared: Path) -> None:
    module = registry.PACKAGES[name].converter
    assert isinstance(module, str)
    if importlib.util.find_spec(module.split(":")[0]) is None:
        pytest.skip(f"{module} is not in this tree")
    # force: convert here, even where facelib-models ships this package ready to run
    path = hub.ensure_package(name, mirror=shared / "assets", progress=False, force=True)
    assert path == hub.packages_dir() / name
    package = ModelPackage.load(path).check()
    assert package.card.task == registry.PACKAGES[name].task


# --- CLI --------------------------------------------------------------------------------------


def test_cli_models(shared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert set(EXPECTED_PACKAGES) <= set(listed)
    assert listed["fomm-vox-256"]["non_commercial"] is True and listed["fomm-vox-256"]["size"] == 728_766_691
    assert main(["models", "list"]) == 0
    assert "NON-COMMERCIAL" in capsys.readouterr().out
    assert main(["models", "fetch", "test-ultraface", "--mirror", str(shared / "assets"), "--quiet"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert (path / "facelib.json").is_file()
    assert main(["models", "path", "test-ultraface"]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    assert main(["models", "remove", "test-ultraface"]) == 0
    assert not path.exists()
    assert cached_path(registry.get_artefact("test-rfb320")).is_file()  # downloads survive 'remove'
    capsys.readouterr()
    assert main(["models", "path", "test-ultraface"]) == 2
    assert "not in the cache" in capsys.readouterr().err
    assert main(["models", "fetch", "test-ultraface", "--offline", "--quiet"]) == 0  # rebuilt from the cache
    assert main(["models", "remove", "test-ultraface", "--downloads"]) == 0
    assert not cached_path(registry.get_artefact("test-rfb320")).exists()
    capsys.readouterr()
    assert main(["models", "fetch", "test-ultraface", "--offline"]) == 2
    err = capsys.readouterr().err
    assert "offline" in err and REL in err
    assert main(["models", "fetch", "test-ultraface", "--file", "nonsense"]) == 2


def test_resolve_model(shared: Path, tmp_path: Path) -> None:
    assert hub.resolve_model(tmp_path) == tmp_path
    path = hub.resolve_model("test-ultraface", mirror=shared / "assets", progress=False)
    assert path == hub.packages_dir() / "test-ultraface"
    with pytest.raises(ModelError, match="neither a model package path nor a known model name"):
        hub.resolve_model("no-such-model")


def test_cli_requires_licence_acceptance(
    shared: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    art = registry.get_artefact("test-rfb320")
    monkeypatch.setitem(
        registry.ARTEFACTS, "test-rfb320", attrs.evolve(art, non_commercial=True, licence="research-only")
    )
    assert main(["models", "fetch", "test-ultraface", "--mirror", str(shared / "assets")]) == 2
    err = capsys.readouterr().err
    assert "non-commercial licence: research-only" in err and "--accept-licence" in err
    assert not cached_path(art).exists()
    argv = ["models", "fetch", "test-ultraface", "--mirror", str(shared / "assets"), "--accept-licence"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "[NON-COMMERCIAL]" in captured.err and "non-commercial use only" in captured.err
    assert Path(captured.out.strip()).is_dir()
