"""The cambricon backend end to end against the MagicMind double, on the real models."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import facelib
from facelib.backends import CompileRequest
from facelib.errors import BackendError, BackendUnavailableError, InferenceError, InputError, ModelFileError
from facelib.testing.doubles import entry_point_installed
from facelib.testing.model_cases import FSA_RANGE, fsanet_crops, onnxruntime_outputs

TOL = 1e-5
FSA = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
OUT = "pred_pose/mul_24:0"


def _build(backend: object, onnx: Path, out: Path, shapes: dict, **kw: object) -> Path:
    return backend.compile(CompileRequest(onnx, out, shapes=shapes, **kw))  # type: ignore[attr-defined]


def _helper() -> object:
    sys.path.insert(0, str(Path(__file__).parent / "doubles"))
    try:
        import cambricon_testing
    finally:
        sys.path.pop(0)
    return cambricon_testing


def test_fixed_batch_is_padded_never_truncated(cambricon: type, models_dir: Path, tmp_path: Path) -> None:
    onnx = models_dir / FSA
    crops = fsanet_crops(models_dir)
    backend = cambricon(mutable=False, batch_size=4)
    with backend.load(_build(backend, onnx, tmp_path / "fixed.mm", {"input_1:0": FSA_RANGE})) as session:
        assert not session.mutable and session.inputs[0].shape == (4, 64, 64, 3)
        for n in (1, 3, 4):
            feeds = {"input_1:0": crops[:n]}
            assert session.plan(feeds).batch == (None if n == 4 else 4)
            got = session.run(feeds)[OUT]
            assert got.shape == (n, 3)
            np.testing.assert_allclose(got, onnxruntime_outputs(onnx, feeds)[OUT], rtol=0, atol=TOL)
        with pytest.raises(InputError, match="fit none of the compiled shapes"):
            session.run({"input_1:0": crops[:5]})
        with pytest.raises(InputError, match="inputs do not match"):
            session.run({"x": crops[:1]})
    with pytest.raises(InferenceError, match="closed"):
        session.run({"input_1:0": crops[:1]})


def test_mutable_shapes_follow_dim_range(cambricon: type, models_dir: Path, tmp_path: Path) -> None:
    onnx = models_dir / FSA
    crops = np.concatenate([fsanet_crops(models_dir)] * 2)
    backend = cambricon()
    with backend.load(_build(backend, onnx, tmp_path / "mut.mm", {"input_1:0": FSA_RANGE})) as session:
        assert session.mutable and session.inputs[0].shape == (None, 64, 64, 3)
        got = session.run({"input_1:0": crops[:7]})[OUT]
        np.testing.assert_allclose(got, onnxruntime_outputs(onnx, {"input_1:0": crops[:7]})[OUT], rtol=0, atol=TOL)
        with pytest.raises(InputError, match=r"outside the range \(1, 64, 64, 3\)\.\.\(8, 64, 64, 3\)"):
            session.run({"input_1:0": crops[:9]})  # checked against the dim_range recorded at build time
        with pytest.raises(InputError):
            session.run({"input_1:0": crops[:2, :32]})
    (tmp_path / "mut.mm.dim_range.json").unlink()  # a model built elsewhere: MagicMind's own check answers
    with backend.load(tmp_path / "mut.mm") as session, pytest.raises(InferenceError, match="outside dim_range"):
        session.run({"input_1:0": crops[:9]})


def test_package_cache_keeps_the_dim_range_beside_the_model(cambricon: type, models_dir: Path, tmp_path: Path) -> None:
    from facelib.models import ModelPackage
    from facelib.testing.packages import head_pose_card_package

    package = ModelPackage.load(head_pose_card_package(models_dir, tmp_path / "pkg"))
    crops = np.concatenate([fsanet_crops(models_dir)] * 2)
    with package.session("capsule", cambricon()) as session:
        assert session.mutable
        assert Path(str(session.model_path) + ".dim_range.json").is_file()
        assert not list(session.model_path.parent.glob("*.tmp*"))  # nothing left from the build
        with pytest.raises(InputError, match="outside the range"):
            session.run({"input_1:0": crops[:9]})


def test_precision_modes(cambricon: type, models_dir: Path, tmp_path: Path) -> None:
    onnx = models_dir / FSA
    samples = [{"input_1:0": c[None]} for c in fsanet_crops(models_dir)]
    backend = cambricon()
    for precision in ("fp16", "int8"):
        path = _build(
            backend,
            onnx,
            tmp_path / f"{precision}.mm",
            {"input_1:0": FSA_RANGE},
            precision=precision,
            calibration=samples,
        )
        with backend.load(path) as session:  # the double computes in float32: only the build path is checked
            assert session.run(samples[0])[OUT].shape == (1, 3)
    path = _build(
        cambricon(precision_mode="qint8_mixed_float32"),
        onnx,
        tmp_path / "q.mm",
        {"input_1:0": FSA_RANGE},
        calibration=samples,
    )
    assert path.is_file()
    with pytest.raises(BackendError, match="needs calibration data"):
        _build(backend, onnx, tmp_path / "x.mm", {"input_1:0": FSA_RANGE}, precision="int8")
    with pytest.raises(BackendError, match="precisions"):
        _build(backend, onnx, tmp_path / "x.mm", {"input_1:0": FSA_RANGE}, precision="bf16")
    with pytest.raises(InputError, match="precision_mode"):
        _build(cambricon(precision_mode="force_int4"), onnx, tmp_path / "x.mm", {"input_1:0": FSA_RANGE})
    with pytest.raises(BackendError, match="no shape range"):
        _build(backend, onnx, tmp_path / "x.mm", {})
    with pytest.raises(BackendError, match="builder config"):
        _build(cambricon(computation_preference={"bad": 1}), onnx, tmp_path / "x.mm", {"input_1:0": FSA_RANGE})


def test_bad_status_becomes_inference_error(models_dir: Path, tmp_path: Path) -> None:
    helper = _helper()
    onnx = models_dir / "mediapipe/face_detector.onnx"
    feeds = {"input": np.zeros((1, 128, 128, 3), np.float32)}
    for fail, message in (("enqueue", "enqueue failed"), ("sync", "queue sync")):
        with helper.cambricon_doubles(fail=fail) as cls:  # type: ignore[attr-defined]
            backend = cls()
            with (
                backend.load(_build(backend, onnx, tmp_path / f"{fail}.mm", {})) as session,
                pytest.raises(InferenceError, match=message),
            ):
                session.run(feeds)


def test_unavailable_without_magicmind_or_mlu() -> None:
    helper = _helper()
    with helper.cambricon_doubles(magicmind=False) as cls:  # type: ignore[attr-defined]
        assert "magicmind.python.runtime" in cls.available().reason
        with pytest.raises(BackendUnavailableError, match="not importable"):
            facelib.get_backend("cambricon")
    with helper.cambricon_doubles(mlus=0) as cls:  # type: ignore[attr-defined]
        assert "no MLU" in cls.available().reason
        with pytest.raises(BackendUnavailableError, match="no MLU"):
            facelib.get_backend("cambricon")


def test_bad_model_files_and_devices(cambricon: type, models_dir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mm"
    junk.write_bytes(b"nope")
    with pytest.raises(ModelFileError, match="not a MagicMind model"):
        cambricon().load(junk)
    model = _build(cambricon(), models_dir / "mediapipe/face_blendshapes.onnx", tmp_path / "b.mm", {})
    with pytest.raises(BackendError, match="activating MLU 2"):
        cambricon(device_id=2).load(model)
    with pytest.raises(InputError, match="unknown cambricon backend options"):
        cambricon(precision="fp16")


@pytest.mark.slow
@pytest.mark.convert
def test_fsanet_built_from_tensorflow_graph(cambricon: type, models_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="the MagicMind double parses TF graphs through tensorflow + tf2onnx")
    pytest.importorskip("tf2onnx", reason="the MagicMind double parses TF graphs through tensorflow + tf2onnx")
    from facelib_cambricon import build_from_tensorflow

    pb = models_dir / "fsanet/fsanet_capsule_3_16_2_21_5.pb"
    path = build_from_tensorflow(
        pb, tmp_path / "tf.mm", ["input_1"], ["pred_pose/mul_24"], {"input_1": FSA_RANGE}, precision="fp32"
    )
    crops = fsanet_crops(models_dir)
    with cambricon().load(path) as session:
        assert [s.name for s in session.inputs] == ["input_1"]
        got = session.run({"input_1": crops})["pred_pose/mul_24"]
    want = onnxruntime_outputs(models_dir / FSA, {"input_1:0": crops})[OUT]
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_entry_point_registers_the_plugin(tmp_path: Path) -> None:
    if importlib.util.find_spec("facelib_cambricon") is None:
        pytest.skip("facelib_cambricon is not importable")
    with entry_point_installed(tmp_path, "facelib-cambricon", "cambricon", "facelib_cambricon.plugin") as infos:
        assert any("facelib-cambricon" in b.origin for b in infos)
        assert all(b.formats == (".mm", ".magicmind") for b in infos)
