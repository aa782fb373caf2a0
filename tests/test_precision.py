"""Reduced-precision package variants: int8 on real data, accuracy cost against float32.

* HeadPose (convolutional, static Q/DQ): calibrated on three AFLW2000 faces, scored on the
  other three and on all six (AFLW2000 MAE against the ground truth, and against float32);
* Audio2Face (transformer encoder + decoder step, dynamic int8): vertex error against the
  float32 package on the tiny reference checkpoint and real speech;
* bf16 on ONNX Runtime CPU and unknown words are typed errors; nothing half-written is left;
* the measured per-role plan: files whose int8 form was slower stay float32 and the card says so;
* the CLI: ``facelib convert precision`` (atomic) and ``facelib check TASK --precision int8``
  (the AFLW2000 MAE of float32 and int8 on the shared faces, the per-field differences).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from facelib.cli import main
from facelib.errors import InputError
from facelib.models.package import ModelPackage
from facelib.models.precision import (
    MEASURED,
    PrecisionWarning,
    check_precision,
    method_for,
    plan_for,
    quantize_package,
    record_feeds,
)
from facelib.tasks.head_pose import HeadPose
from facelib.tasks.head_pose_eval import evaluate_aflw
from tests.faceformer_helpers import convert, reference
from tests.headpose_support import build_fsanet, build_ultraface


def _ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.fixture(scope="module")
def fsanet(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fsanet(models_dir, tmp_path_factory.mktemp("prec") / "fsanet")


def test_headpose_int8_static_costs_little_on_aflw2000(fsanet: Path, shared: Path, tmp_path: Path) -> None:
    ref = np.load(shared / "reference" / "fsanet_aflw_shared_ref.npz")
    crops = ref["crops_bgr_u8"].astype(np.float32)
    with HeadPose(fsanet, backend="onnxruntime") as fp32:
        feeds = record_feeds(fp32, lambda: [fp32.predict_crops(c[None]) for c in crops[:3]])
        assert set(feeds) == {"ensemble"} and len(feeds["ensemble"]) == 3
        want = fp32.predict_crops(crops)[0]
        fp32_eval = evaluate_aflw(shared / "assets" / "media" / "aflw2000", fp32, crop="landmarks")
    out = quantize_package(fsanet, "int8", tmp_path / "fsanet-int8", calibration=feeds, roles=["ensemble"])
    pkg = ModelPackage.load(out)
    assert pkg.card.metadata["precision"] == "int8"
    assert pkg.card.metadata["quantization"]["ensemble"] == "static (forced: measured slower than fp32)"
    assert pkg.card.metadata["quantization"]["capsule"].startswith("fp32 (not among")
    assert not pkg.validate()  # hashes and I/O of the card match the new files
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(pkg.path("ensemble"))
    assert not list(tmp_path.glob(".fsanet-int8.*"))  # the work directory is gone
    with HeadPose(out, backend="onnxruntime") as int8:
        got = int8.predict_crops(crops)[0]
        int8_eval = evaluate_aflw(shared / "assets" / "media" / "aflw2000", int8, crop="landmarks")
    held_out = np.abs(got[3:] - want[3:]).max()
    print(
        f"HeadPose int8: max |int8 - fp32| {np.abs(got - want).max():.2f} deg (held out {held_out:.2f}); "
        f"AFLW2000 MAE fp32 {fp32_eval.mae_mean:.2f}, int8 {int8_eval.mae_mean:.2f}"
    )
    assert 0 < held_out < 3.0  # changed (really quantized), by 1.3 degrees when written
    assert int8_eval.count == fp32_eval.count == 6
    assert int8_eval.mae_mean < fp32_eval.mae_mean + 0.5  # 7.39 -> 7.46 when written


def test_audio2face_int8_dynamic_vertex_error(shared: Path, tmp_path: Path) -> None:
    from facelib.tasks.audio2face import Audio2Face

    ref_dir = shared / "reference"
    voca = convert(ref_dir, tmp_path / "voca", "vocaset")
    ref = reference(ref_dir, "vocaset")
    out = quantize_package(voca, "int8", tmp_path / "voca-int8")
    pkg = ModelPackage.load(out)
    methods = pkg.card.metadata["quantization"]
    # no calibration needed: the transformer graphs dynamic, the streaming conv stack kept fp32
    assert methods.pop("audio_cnn_stream").startswith("fp32")
    assert set(methods.values()) == {"dynamic"} and methods
    onnx_roles = [r for r, f in pkg.card.files.items() if f.path.endswith(".onnx")]
    assert any("MatMulInteger" in _ops(pkg.path(r)) or "DynamicQuantizeLinear" in _ops(pkg.path(r)) for r in onnx_roles)
    subject = int(ref["subject_index"])
    with Audio2Face(voca) as fp32, Audio2Face(out) as int8:
        want = fp32.predict(ref["audio_16k"], subject, ref["template"]).vertices
        got = int8.predict(ref["audio_16k"], subject, ref["template"]).vertices
    offsets = np.abs(want - ref["template"]).max()
    err = np.abs(got - want)
    print(f"Audio2Face int8: max vertex error {err.max():.2e}, mean {err.mean():.2e} (largest offset {offsets:.2e})")
    assert got.shape == want.shape
    assert 0 < err.max() < 0.03 * offsets  # 1.1% of the largest offset when written


def test_method_follows_the_graph(fsanet: Path, shared: Path, tmp_path: Path) -> None:
    pkg = ModelPackage.load(fsanet)
    assert method_for(pkg.path("ensemble")) == "static"
    voca = ModelPackage.load(convert(shared / "reference", tmp_path / "v", "vocaset"))
    decoder = next(r for r in voca.card.files if "decoder" in r)
    assert method_for(voca.path(decoder)) == "dynamic"


def test_precision_words_and_errors(fsanet: Path, tmp_path: Path) -> None:
    assert check_precision("int8") == "int8"
    assert check_precision("bf16", backend="tensorrt") == "bf16"
    with pytest.raises(InputError, match="bf16 needs an accelerator"):
        check_precision("bf16")
    with pytest.raises(InputError, match="precision must be one of"):
        check_precision("int4")
    with pytest.raises(InputError, match="calibration inputs"):
        quantize_package(fsanet, "int8", tmp_path / "no-calibration", roles=["ensemble"])
    with pytest.raises(InputError, match="has no files"):
        quantize_package(fsanet, "int8", tmp_path / "no-such-role", roles=["decoder"])
    assert not (tmp_path / "no-calibration").exists()
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_from_pretrained_int8_makes_a_cached_calibrated_variant(fsanet: Path, shared: Path, tmp_path: Path) -> None:
    import shutil

    package = tmp_path / "fsanet"
    shutil.copytree(fsanet, package)
    crops = np.load(shared / "reference" / "fsanet_aflw_shared_ref.npz")["crops_bgr_u8"].astype(np.float32)
    calls: list[int] = []

    def calibrate(task: HeadPose) -> None:
        calls.append(1)
        for crop in crops[:3]:
            task.predict_crops(crop[None])

    with (
        pytest.warns(PrecisionWarning, match="no file was quantized"),
        HeadPose.from_pretrained(str(package), precision="int8", calibrate=calibrate) as pose,
    ):
        assert pose.card.metadata["precision"] == "int8"
        assert pose.package.root == package / ".facelib-cache" / "precision-int8"
        got = pose.predict_crops(crops)[0]
        with HeadPose(package) as fp32:  # FSA-Net stays float32: int8 measured slower on CPU
            np.testing.assert_array_equal(fp32.predict_crops(crops)[0], got)
    with HeadPose.from_pretrained(str(package), precision="int8", calibrate=calibrate) as again:
        np.testing.assert_array_equal(again.predict_crops(crops)[0], got)
    assert calls == [1]  # calibrated once, then cached
    card_file = package / ".facelib-cache" / "precision-int8" / "facelib.json"
    card_file.write_text(card_file.read_text().replace('"quantization_plan": "', '"quantization_plan": "old-'))
    with pytest.warns(PrecisionWarning), HeadPose.from_pretrained(str(package), precision="int8", calibrate=calibrate):
        pass
    assert calls == [1, 1]  # a variant made under an older plan is remade
    with pytest.raises(InputError, match="bf16 needs an accelerator"):
        HeadPose.from_pretrained(str(package), precision="bf16")


def test_measured_plan_keeps_slower_files_fp32_and_says_why(fsanet: Path, tmp_path: Path) -> None:
    card = ModelPackage.load(fsanet).card
    plan = plan_for(card)
    assert {c.method for c in plan.values() if not isinstance(c, str)} == {"fp32"}  # every FSA-Net file
    with pytest.warns(PrecisionWarning, match="no file was quantized to int8"):
        out = quantize_package(fsanet, "int8", tmp_path / "v")
    meta = ModelPackage.load(out).card.metadata
    assert meta["quantization"]["ensemble"].startswith("fp32 (kept fp32: int8 measured 0.74x fp32")
    assert meta["quantization_measured"]["ensemble"] == {"method": "fp32", "speed_vs_fp32": 0.74, "max_error": 4.71}
    # every file the plan quantizes was measured faster than float32; every slower one stays float32
    for (task, role), choice in MEASURED.items():
        assert choice.speed > 1.0 if choice.method != "fp32" else True, (task, role)
        assert choice.method == "fp32" if choice.speed < 1.0 else True, (task, role)
    assert plan_for(card, roles=["ensemble"])["ensemble"] == "forced"


@pytest.fixture(scope="module")
def ultraface(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ultraface(models_dir, tmp_path_factory.mktemp("prec-uf") / "ultraface")


def test_cli_convert_precision_writes_the_variant_atomically(
    fsanet: Path, ultraface: Path, media_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fsanet-int8"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run")
    image = str(media_dir / "images" / "two_people.jpg")
    args = ["convert", "precision", str(fsanet), "-o", str(out), "--precision", "int8", "--detector", str(ultraface)]
    assert main([*args, "--roles", "ensemble", "--calibrate", image, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["quantization"]["ensemble"].startswith("static")
    assert not (out / "stale.txt").exists()  # the folder was replaced as a whole
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(ModelPackage.load(out).path("ensemble"))
    assert not ModelPackage.load(out).validate()
    # static without calibration media: a typed error, and the earlier variant is left as it was
    before = sorted(p.name for p in out.iterdir())
    assert main([*args, "--roles", "ensemble"]) == 2
    assert "calibration inputs" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fsanet-int8"]  # no work folder left
    assert main([*args[:-2], "--precision", "bf16"]) == 2
    assert "bf16 needs an accelerator" in capsys.readouterr().err
    assert main([*args[:-2], "--precision", "int4"]) == 2
    assert "precision must be one of" in capsys.readouterr().err


def test_cli_check_precision_reports_aflw2000_mae(
    fsanet: Path, ultraface: Path, media_dir: Path, shared: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aflw = shared / "assets" / "media" / "aflw2000"
    image = str(media_dir / "images" / "two_people.jpg")
    common = ["check", "headpose", "--model", str(fsanet), "--detector", str(ultraface), "--input", image]
    assert main([*common, "--precision", "int8", "--dataset", str(aflw), "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["quantized"] == []  # FSA-Net stays float32 by default: no cost at all
    assert all(d["max_abs"] == 0 for d in default["differences"])
    assert default["figures"]["aflw2000_mae_fp32"] == default["figures"]["aflw2000_mae_int8"]
    calib = sorted(str(p) for p in aflw.glob("*.jpg"))[:1]
    forced = [*common, "--precision", "int8", "--roles", "ensemble", "--calibrate", calib[0], "--dataset", str(aflw)]
    assert main(forced) == 0
    text = capsys.readouterr().out
    assert "ensemble: static (forced" in text and "AFLW2000 MAE over 6 faces" in text
    assert main([*forced, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    figures = report["figures"]
    assert report["quantized"] == ["ensemble"]
    assert 6.0 < figures["aflw2000_mae_fp32"] < 9.0  # 7.39 deg (landmark crops)
    assert figures["aflw2000_mae_int8"] != figures["aflw2000_mae_fp32"]  # really quantized
    assert abs(figures["aflw2000_mae_int8"] - figures["aflw2000_mae_fp32"]) < 1.0
    yaw = next(d for d in report["differences"] if d["output"] == "yaw")
    assert 0 < yaw["max_abs"] < 10.0  # degrees, on the --input faces
    assert main([*forced, "--tolerance", "0.001"]) == 1  # the int8 cost is above a 0.001 deg budget
    capsys.readouterr()
    assert main([*common, "--precision", "bf16"]) == 2
    assert "bf16 needs an accelerator" in capsys.readouterr().err
    assert main([*common, "--precision", "int8", "--backend", "tensorrt"]) == 2
    err = capsys.readouterr().err
    assert "precision=int8" in err or "tensorrt" in err


def test_check_precision_motion_quantizes_the_measured_files(
    reference_dir: Path, media_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch")  # to convert the tiny checkpoint
    from facelib.models.convert.fomm import build_package
    from facelib.tools.precision_check import precision_report
    from facelib.tools.task_tools import prepare

    pkg = build_package(
        {"checkpoint": reference_dir / "fomm_tiny_seed1.pth.tar"},
        tmp_path / "fomm",
        config=reference_dir / "fomm_tiny_seed1.yaml",
    ).root
    source, video = media_dir / "images" / "fomm_source_02.png", media_dir / "video" / "fomm_driving_00.mp4"
    run = prepare("motion", pkg, [source, video])
    report = precision_report(run, "int8", calibrate=[media_dir / "images" / "obama.jpg", video], max_frames=3)
    assert report.quantized == ["source_encoder", "generator"]  # kp_detector measured slower in int8
    assert report.quantization["kp_detector"].startswith("fp32 (kept fp32: int8 measured 0.97x")
    (frames,) = report.differences
    assert frames.output == "frames" and frames.shape == (3 * 256 * 256 * 3,)
    print(f"FOMM tiny int8: frame error max {frames.max_abs:.3g}, mse {frames.mse:.2e}")
    assert 0 < frames.max_abs < 0.005 and frames.mse < 1e-6  # RGB in [0, 1]; 3.6e-4 when written


def test_cli_check_precision_audio2face_vertex_error(
    reference_dir: Path, media_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = convert(reference_dir, tmp_path / "voca", "vocaset")
    audio = str(media_dir / "audio" / "jfk_16k_mono.wav")
    template = str(media_dir / "meshes" / "FLAME_sample.ply")
    args = ["check", "audio2face", "--model", str(pkg), "--input", audio, "--template", template]
    assert main([*args, "--precision", "int8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"audio_encoder", "decoder_step"} <= set(report["quantized"])  # (+ the streaming encoder)
    vertices = next(d for d in report["differences"] if d["output"] == "vertices")
    print(f"Audio2Face tiny int8 (CLI): vertex error max {vertices['max_abs']:.2e}")
    assert 0 < vertices["max_abs"] < 2e-3  # template units (metres): 0.86 mm when written
    assert main([*args, "--precision", "int8", "--dataset", str(media_dir)]) == 2
    assert "--dataset (AFLW2000 MAE) is for head pose" in capsys.readouterr().err


def test_check_precision_blendshapes_against_mediapipe(
    mediapipe_package: Path, fsanet: Path, media_dir: Path, models_dir: Path
) -> None:
    import attrs

    pytest.importorskip("mediapipe")
    from facelib.tools.precision_check import format_report, precision_report
    from facelib.tools.task_tools import prepare

    video = media_dir / "video" / "talking_face_01.mp4"
    run = prepare("blendshapes", mediapipe_package, [video])
    task = models_dir / "mediapipe" / "face_landmarker.task"
    report = precision_report(run, "int8", mediapipe_task=task, max_frames=8)
    assert report.quantized == []  # the landmarker's int8 files were slower and wrong: all stay float32
    assert all(d.max_abs == 0 for d in report.differences)
    f = report.figures
    assert f["mediapipe_frames"] == 8
    assert f["mediapipe_blendshapes_max_fp32"] == f["mediapipe_blendshapes_max_int8"]
    assert 0 < f["mediapipe_blendshapes_max_fp32"] < 0.35  # parity with the mediapipe package
    assert "blendshapes vs the mediapipe package over 8 frames" in format_report(report)
    with pytest.raises(InputError, match="--mediapipe-task is for blendshapes"):
        precision_report(attrs.evolve(run, model=ModelPackage.load(fsanet)), mediapipe_task=task)
