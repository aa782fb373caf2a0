"""Reduced-precision package variants: int8 on real data, accuracy cost against float32.

* HeadPose (convolutional, static Q/DQ): calibrated on three AFLW2000 faces, scored on the
  other three and on all six (AFLW2000 MAE against the ground truth, and against float32);
* Audio2Face (transformer encoder + decoder step, dynamic int8): vertex error against the
  float32 package on the tiny reference checkpoint and real speech;
* bf16 on ONNX Runtime CPU and unknown words are typed errors; nothing half-written is left.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from facelib.errors import InputError
from facelib.models.package import ModelPackage
from facelib.models.precision import check_precision, method_for, quantize_package, record_feeds
from facelib.tasks.head_pose import HeadPose
from facelib.tasks.head_pose_eval import evaluate_aflw
from tests.faceformer_helpers import convert, reference
from tests.headpose_support import build_fsanet


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
    out = quantize_package(fsanet, "int8", tmp_path / "fsanet-int8", calibration=feeds)
    pkg = ModelPackage.load(out)
    assert pkg.card.metadata["precision"] == "int8"
    assert pkg.card.metadata["quantization"]["ensemble"] == "static"
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
    assert set(methods.values()) == {"dynamic"} and methods  # no calibration needed for these
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
        quantize_package(fsanet, "int8", tmp_path / "no-calibration")
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

    with HeadPose.from_pretrained(str(package), precision="int8", calibrate=calibrate) as pose:
        assert pose.card.metadata["precision"] == "int8"
        assert pose.package.root == package / ".facelib-cache" / "precision-int8"
        got = pose.predict_crops(crops)[0]
    with HeadPose.from_pretrained(str(package), precision="int8", calibrate=calibrate) as again:
        np.testing.assert_array_equal(again.predict_crops(crops)[0], got)
    assert calls == [1]  # calibrated once, then cached
    with pytest.raises(InputError, match="bf16 needs an accelerator"):
        HeadPose.from_pretrained(str(package), precision="bf16")
