"""FOMM converter: released-layout checkpoints -> ONNX package; parity with upstream's reference outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("yaml")

from _fomm_helpers import SMALL_CONFIG, make_checkpoint

from facelib.errors import ConversionError, InputError
from facelib.models.convert import fomm as convert
from facelib.processing import fomm
from facelib.tasks.motion_transfer import MotionTransfer

pytestmark = pytest.mark.convert


@pytest.fixture(scope="module")
def ref(reference_dir: Path) -> dict[str, np.ndarray]:
    data = np.load(reference_dir / "fomm_tiny_seed1_ref.npz")
    return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def tiny_pkg(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fomm") / "tiny"
    convert.build_package(
        {"checkpoint": reference_dir / "fomm_tiny_seed1.pth.tar"},
        out,
        config=reference_dir / "fomm_tiny_seed1.yaml",
    )
    return out


@pytest.fixture(scope="module")
def tiny_pkg_ac(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fomm") / "tiny_ac"
    convert.build_package(
        {"checkpoint": reference_dir / "fomm_tiny_seed1.pth.tar"},
        out,
        config=str(reference_dir / "fomm_tiny_seed1.yaml"),
        align_corners=True,
    )
    return out


def test_card_carries_config_and_options(tiny_pkg: Path, reference_dir: Path) -> None:
    card = json.loads((tiny_pkg / "facelib.json").read_text())
    assert card["task"] == "motion_transfer"
    assert set(card["files"]) == {"kp_detector", "source_encoder", "generator"}
    assert card["metadata"]["align_corners"] is False
    assert card["metadata"]["config"]["model_params"]["kp_detector_params"]["block_expansion"] == 8
    assert card["source"]["sha256"] == convert.sha256_file(reference_dir / "fomm_tiny_seed1.pth.tar")
    assert card["preprocessing"]["size"] == [256, 256]
    import onnx

    for name in ("kp_detector", "source_encoder", "generator"):
        model = onnx.load(str(tiny_pkg / f"{name}.onnx"))
        assert model.ir_version == 10
        assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] >= 16
    ops = {n.op_type for n in onnx.load(str(tiny_pkg / "generator.onnx")).graph.node}
    assert "GridSample" in ops and "Inverse" not in ops


def test_keypoints_match_upstream(tiny_pkg: Path, ref: dict[str, np.ndarray]) -> None:
    with MotionTransfer(tiny_pkg) as mt:
        v, j = mt.keypoints(ref["source"])
        np.testing.assert_allclose(v[0], ref["kp_source_value"], atol=1e-4, rtol=0)
        np.testing.assert_allclose(j[0], ref["kp_source_jacobian"], atol=1e-4, rtol=0)
        v, j = mt.keypoints(ref["driving"])
        np.testing.assert_allclose(v, ref["kp_driving_value"], atol=1e-4, rtol=0)
        np.testing.assert_allclose(j, ref["kp_driving_jacobian"], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("mode", "adapt", "key"), [("relative", True, "relative_adapt"), ("absolute", False, "absolute")]
)
def test_predictions_match_upstream(
    tiny_pkg: Path, ref: dict[str, np.ndarray], mode: str, adapt: bool, key: str
) -> None:
    with MotionTransfer(tiny_pkg, movement=mode, adapt_scale=adapt, batch_size=3) as mt:
        state = mt.prepare_source(ref["source"])
        v, j = mt.keypoints(ref["driving"])
        nv, nj = fomm.normalize_kp(state.kp, (v, j), (v[0], j[0]), mode, adapt_scale=adapt)
        np.testing.assert_allclose(nv, ref[f"{key}_kp_value"], atol=1e-4, rtol=0)
        np.testing.assert_allclose(nj, ref[f"{key}_kp_jacobian"], atol=1e-4, rtol=0)
        frames = np.stack(list(mt.animate(state, ref["driving"])))
    assert frames.shape == ref[f"{key}_prediction"].shape and frames.dtype == np.float32
    assert np.abs(frames - ref[f"{key}_prediction"]).max() < 1e-3


def test_align_corners_true_matches_torch_and_differs(
    tiny_pkg: Path, tiny_pkg_ac: Path, ref: dict[str, np.ndarray], reference_dir: Path
) -> None:
    import torch

    from facelib.models.convert import fomm_torch

    kp, gen, _ = convert.build_torch_modules(
        reference_dir / "fomm_tiny_seed1.pth.tar", reference_dir / "fomm_tiny_seed1.yaml"
    )
    src = torch.from_numpy(ref["source"]).permute(2, 0, 1)[None]
    drv = torch.from_numpy(ref["driving"][:4]).permute(0, 3, 1, 2)
    with torch.no_grad():
        vs, js = kp(src)
        vd, jd = kp(drv)
        feats, small = fomm_torch.SourceEncoder(gen)(src)
        expected = fomm_torch.FrameGenerator(gen, True)(feats, small, vs, js, vd, jd).permute(0, 2, 3, 1).numpy()
    assert json.loads((tiny_pkg_ac / "facelib.json").read_text())["metadata"]["align_corners"] is True
    with MotionTransfer(tiny_pkg_ac, movement="absolute") as mt:
        got = np.stack(list(mt.animate(ref["source"], ref["driving"][:4])))
    assert np.abs(got - expected).max() < 1e-4
    assert np.abs(got - ref["absolute_prediction"][:4]).max() > 1e-3  # the option really changes the model


def test_presets_and_yaml_config(reference_dir: Path) -> None:
    vox = convert.load_config("vox-256")
    taichi = convert.load_config("taichi-256")
    assert vox["model_params"] == taichi["model_params"]
    assert vox["model_params"]["generator_params"]["num_bottleneck_blocks"] == 6
    assert vox["model_params"]["kp_detector_params"]["max_features"] == 1024
    tiny = convert.load_config(reference_dir / "fomm_tiny_seed1.yaml")
    assert tiny["model_params"]["common_params"]["num_kp"] == 10
    assert tiny["dataset_params"]["frame_shape"] == [256, 256, 3]
    with pytest.raises(InputError, match="preset"):
        convert.load_config("vox-512")


def test_checkpoint_with_optimizer_state_and_small_frames(tmp_path: Path) -> None:
    ckpt = make_checkpoint(tmp_path / "small.pth.tar", SMALL_CONFIG, with_optimizer=True)
    pkg = convert.build_package({"checkpoint": ckpt}, tmp_path / "pkg", config=SMALL_CONFIG)
    assert pkg.card.preprocessing["size"] == [64, 64]


def test_bad_checkpoints(tmp_path: Path, reference_dir: Path) -> None:
    import torch

    empty = tmp_path / "empty.pth.tar"
    empty.write_bytes(b"")
    with pytest.raises(ConversionError, match="empty"):
        convert.build_package({"checkpoint": empty}, tmp_path / "a", config="vox-256")
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConversionError, match="weights-only"):
        convert.build_package({"checkpoint": garbage}, tmp_path / "b", config="vox-256")
    other = tmp_path / "other.pth.tar"
    torch.save({"model": {}}, other)
    with pytest.raises(ConversionError, match="not an FOMM checkpoint"):
        convert.build_package({"checkpoint": other}, tmp_path / "c", config="vox-256")
    # the tiny checkpoint with the full-size config: shapes do not match
    with pytest.raises(ConversionError, match="config"):
        convert.build_package({"checkpoint": reference_dir / "fomm_tiny_seed1.pth.tar"}, tmp_path / "d")
    with pytest.raises(InputError, match="checkpoint"):
        convert.build_package({}, tmp_path / "e")


def test_checkpoint_without_bn_counters_and_blur_kernels(
    tmp_path: Path, reference_dir: Path, tiny_pkg: Path, ref: dict[str, np.ndarray]
) -> None:
    """Old-PyTorch checkpoints lack num_batches_tracked; the Gaussian kernels are recomputed."""
    import torch

    data = torch.load(reference_dir / "fomm_tiny_seed1.pth.tar", weights_only=True)
    for key in ("generator", "kp_detector"):
        data[key] = {k: v for k, v in data[key].items() if not k.endswith(("num_batches_tracked", "down.weight"))}
    data["optimizer_generator"] = {"state": {}, "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "params": [0]}]}
    old = tmp_path / "old.pth.tar"
    torch.save(data, old)
    convert.build_package({"checkpoint": old}, tmp_path / "pkg", config=reference_dir / "fomm_tiny_seed1.yaml")
    with MotionTransfer(tmp_path / "pkg", movement="absolute") as mt:
        frames = np.stack(list(mt.animate(ref["source"], ref["driving"][:2])))
    assert np.abs(frames - ref["absolute_prediction"][:2]).max() < 1e-3
