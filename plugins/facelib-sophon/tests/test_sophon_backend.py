"""The sophon backend end to end against the SAIL and TPU-MLIR doubles, on the real models."""

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


def _compile(backend: object, onnx: Path, out: Path, shapes: dict, **kw: object) -> Path:
    return backend.compile(CompileRequest(onnx, out, shapes=shapes, **kw))  # type: ignore[attr-defined]


def test_fsanet_batches_are_padded_to_static_stages(sophon: type, models_dir: Path, tmp_path: Path) -> None:
    onnx = models_dir / "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    crops = fsanet_crops(models_dir)
    backend = sophon()
    bmodel = _compile(backend, onnx, tmp_path / "fsa.bmodel", {"input_1:0": FSA_RANGE})
    with backend.load(bmodel) as session:
        assert sorted(s.key for s in session.stages) == [
            "fsanet_capsule_3_16_2_21_5_b1",
            "fsanet_capsule_3_16_2_21_5_b4",
            "fsanet_capsule_3_16_2_21_5_b8",
        ]
        assert session.inputs[0].shape == (None, 64, 64, 3)
        batch = np.concatenate([crops, crops[:1]])  # 7 real crops
        for n, stage_batch in [(1, None), (2, 4), (3, 4), (4, None), (5, 8), (7, 8)]:
            feeds = {"input_1:0": batch[:n]}
            fitted = session.plan(feeds)
            assert fitted.batch == stage_batch
            got = session.run(feeds)["pred_pose/mul_24:0"]
            want = onnxruntime_outputs(onnx, feeds)["pred_pose/mul_24:0"]
            assert got.shape == (n, 3)
            np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
        with pytest.raises(InputError, match="fit none of the compiled shapes"):
            session.run({"input_1:0": np.concatenate([batch, batch])[:9]})
        with pytest.raises(InputError):
            session.run({"input_1:0": np.zeros((1, 32, 32, 3), np.float32)})
        with pytest.raises(InputError, match="inputs do not match"):
            session.run({"x": crops[:1]})
    with pytest.raises(InferenceError, match="closed"):
        session.run({"input_1:0": crops[:1]})


def test_dynamic_bmodel_runs_any_batch_up_to_max(sophon: type, models_dir: Path, tmp_path: Path) -> None:
    onnx = models_dir / "fsanet/fsanet_var_capsule_3_16_2_21_5.onnx"
    backend = sophon(dynamic=True)
    bmodel = _compile(backend, onnx, tmp_path / "dyn.bmodel", {"input_1:0": FSA_RANGE})
    crops = fsanet_crops(models_dir)
    with backend.load(bmodel) as session:
        assert [s.dynamic for s in session.stages] == [True]
        got = session.run({"input_1:0": crops[:5]})["pred_pose/mul_24:0"]
        np.testing.assert_allclose(
            got, onnxruntime_outputs(onnx, {"input_1:0": crops[:5]})["pred_pose/mul_24:0"], atol=TOL
        )
        with pytest.raises(InputError):
            session.run({"input_1:0": np.zeros((9, 64, 64, 3), np.float32)})


def test_int8_runs_calibration_on_real_samples(sophon: type, models_dir: Path, tmp_path: Path) -> None:
    onnx = models_dir / "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    samples = [{"input_1:0": c[None]} for c in fsanet_crops(models_dir)]
    backend = sophon(keep_workdir=True)
    static = {"input_1:0": type(FSA_RANGE)((2, 64, 64, 3), (2, 64, 64, 3), (2, 64, 64, 3))}
    _compile(backend, onnx, tmp_path / "int8.bmodel", static, precision="int8", calibration=samples)
    tables = list(tmp_path.glob("facelib-sophon-*/*_cali_table"))
    assert len(tables) == 1 and "# samples 6" in tables[0].read_text()
    with pytest.raises(BackendError, match="calibration data"):
        _compile(backend, onnx, tmp_path / "x.bmodel", static, precision="int8")
    with pytest.raises(BackendError, match="precisions"):
        _compile(backend, onnx, tmp_path / "x.bmodel", static, precision="fp8")


def test_compiler_failure_reports_tool_output(sophon: type, models_dir: Path, tmp_path: Path) -> None:
    onnx = models_dir / "ultraface/version-RFB-320.onnx"
    with pytest.raises(BackendError, match=r"model_deploy failed \(exit 1\)(.|\n)*npz compare FAILED"):
        _compile(sophon(tolerance="1.01,1.01"), onnx, tmp_path / "u.bmodel", {})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendError, match="model_transform was not found"):
        _compile(sophon(tools_dir=str(empty)), onnx, tmp_path / "u.bmodel", {})
    with pytest.raises(BackendError, match="no shape range"):
        _compile(sophon(), models_dir / "fsanet/fsanet_capsule_3_16_2_21_5.onnx", tmp_path / "f.bmodel", {})


def test_unavailable_without_sail_or_tpu(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent / "doubles"))
    try:
        from sophon_testing import sophon_doubles
    finally:
        sys.path.pop(0)
    with sophon_doubles(tmp_path, sail=False) as cls:
        reason = cls.available().reason
        assert "sophon.sail" in reason and "not importable" in reason
        with pytest.raises(BackendUnavailableError, match=r"sophon\.sail"):
            facelib.get_backend("sophon")
    with sophon_doubles(tmp_path, tpus=0) as cls:
        assert "no TPU" in cls.available().reason
        with pytest.raises(BackendUnavailableError, match="no TPU"):
            facelib.get_backend("sophon")


def test_bad_bmodels_are_model_file_errors(sophon: type, models_dir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bmodel"
    junk.write_bytes(b"not a bmodel")
    with pytest.raises(ModelFileError, match="SAIL cannot load"):
        sophon().load(junk)
    bmodel = _compile(sophon(chip="bm1688"), models_dir / "mediapipe/face_detector.onnx", tmp_path / "d.bmodel", {})
    with pytest.raises(ModelFileError, match="compiled for this chip"):
        sophon().load(bmodel)  # the double's device is a bm1684x
    f16_io = _compile(
        sophon(quantize="F16", deploy_args=("--quant_input",)),
        models_dir / "mediapipe/face_detector.onnx",
        tmp_path / "f16.bmodel",
        {},
    )
    with pytest.raises(ModelFileError, match="float32 inputs only"):
        sophon().load(f16_io)
    with pytest.raises(BackendError, match="TPU 3 cannot be opened"):
        sophon(device_id=3).load(bmodel)


def test_combined_package_bmodel_selects_graph(sophon: type, models_dir: Path, tmp_path: Path) -> None:
    from facelib_sophon import combine_bmodels

    crops = fsanet_crops(models_dir)
    paths = []
    for variant in ("capsule_3_16_2_21_5", "var_capsule_3_16_2_21_5"):
        request_opts = {"model_name": variant.split("_3")[0]}
        paths.append(
            _compile(
                sophon(**request_opts),
                models_dir / f"fsanet/fsanet_{variant}.onnx",
                tmp_path / f"{variant}.bmodel",
                {"input_1:0": FSA_RANGE},
            )
        )
    both = combine_bmodels(paths, tmp_path / "fsanet.bmodel")
    with pytest.raises(InputError, match="several models"):
        sophon().load(both)
    for variant, path in zip(("capsule", "var_capsule"), paths):
        with sophon(graph=variant).load(both) as combined, sophon().load(path) as single:
            assert len(combined.stages) == 3
            np.testing.assert_array_equal(
                combined.run({"input_1:0": crops[:3]})["pred_pose/mul_24:0"],
                single.run({"input_1:0": crops[:3]})["pred_pose/mul_24:0"],
            )


def test_entry_point_registers_the_plugin(tmp_path: Path) -> None:
    if importlib.util.find_spec("facelib_sophon") is None:
        pytest.skip("facelib_sophon is not importable")
    with entry_point_installed(tmp_path, "facelib-sophon", "sophon", "facelib_sophon.plugin") as infos:
        if len(infos) == 1:
            assert "facelib-sophon" in infos[0].origin and infos[0].formats == (".bmodel",)
        else:  # also installed for real: both copies are seen
            assert any("facelib-sophon" in b.origin for b in infos)


def test_relative_paths_are_resolved(
    sophon: type, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from facelib_sophon import combine_bmodels

    monkeypatch.chdir(tmp_path)
    onnx = Path(os.path.relpath(models_dir / "mediapipe/face_blendshapes.onnx", tmp_path))
    backend = sophon()
    first = _compile(backend, onnx, Path("a.bmodel"), {})
    second = _compile(sophon(model_name="other"), onnx, Path("b.bmodel"), {})
    both = combine_bmodels([first.name, second.name], "both.bmodel")
    feeds = {"serving_default_input_points:0": np.full((1, 146, 2), 0.5, np.float32)}
    with sophon(graph="other").load(both) as session:
        got = session.run(feeds)["StatefulPartitionedCall:0"]
    np.testing.assert_allclose(got, onnxruntime_outputs(onnx, feeds)["StatefulPartitionedCall:0"], atol=TOL)
