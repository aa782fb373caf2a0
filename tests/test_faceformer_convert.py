"""FaceFormer conversion: sizes from tensors, both weight-norm key layouts, parity with upstream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faceformer_helpers import TAGS, convert, reference

from facelib.errors import ConversionError
from facelib.models.package import ModelPackage
from facelib.processing import faceformer as ff

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module", params=["vocaset", "biwi"])
def package(
    request: pytest.FixtureRequest, reference_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    dataset = request.param
    return dataset, convert(reference_dir, tmp_path_factory.mktemp(dataset), dataset)


def test_sizes_read_from_tensors(package: tuple[str, Path]) -> None:
    dataset, root = package
    meta = ModelPackage.load(root).check().card.metadata
    sizes = meta["sizes"]
    assert (sizes["hidden"], sizes["layers"], sizes["ffn"], sizes["conv_channels"]) == (96, 2, 192, 32)
    assert (sizes["pos_conv_kernel"], sizes["pos_conv_groups"], sizes["encoder_heads"]) == (16, 16, 4)
    assert sizes["conv_kernels"] == [10, 3, 3, 3, 3, 2, 2]
    assert meta["feature_dim"] == (64 if dataset == "vocaset" else 32)
    assert sizes["num_subjects"] == (8 if dataset == "vocaset" else 6)
    assert meta["period"] == (30 if dataset == "vocaset" else 25)


def test_parity_with_upstream(package: tuple[str, Path], reference_dir: Path) -> None:
    from facelib.tasks.audio2face import Audio2Face

    dataset, root = package
    ref = reference(reference_dir, dataset)
    values = ff.normalize_audio(ref["audio_16k"])
    assert np.abs(values - ref["input_values"]).max() < 1e-5
    with Audio2Face(root, backend="onnxruntime") as task:
        result = task.predict(ref["audio_16k"], int(ref["subject_index"]), ref["template"])
    assert result.vertices is not None
    assert result.vertices.shape == ref["vertices"].shape
    assert result.fps == (30.0 if dataset == "vocaset" else 25.0)
    assert np.abs(result.vertices - ref["vertices"]).max() < 1e-4


def test_parametrization_names_give_same_model(reference_dir: Path, tmp_path: Path) -> None:
    from facelib.models.convert.faceformer import build_package

    state = torch.load(reference_dir / f"faceformer_{TAGS['vocaset']}_tiny_seed1.pth", weights_only=True)
    base = "audio_encoder.encoder.pos_conv_embed.conv."
    state[base + "parametrizations.weight.original0"] = state.pop(base + "weight_g")
    state[base + "parametrizations.weight.original1"] = state.pop(base + "weight_v")
    ckpt = tmp_path / "new_names.pth"
    torch.save(state, ckpt)
    new = build_package({"checkpoint": ckpt}, tmp_path / "new", dataset="vocaset", encoder_heads=4)
    old = convert(reference_dir, tmp_path / "old", "vocaset")
    import onnxruntime as ort

    audio = reference(reference_dir, "vocaset")["audio_16k"][:16000]
    feeds = {
        "input_values": ff.normalize_audio(audio)[None],
        "positions": ff.hook_positions(49, "vocaset").astype(np.float32),
    }
    a = ort.InferenceSession(str(new.path("audio_encoder"))).run(None, feeds)[0]
    b = ort.InferenceSession(str(old / "audio_encoder.onnx")).run(None, feeds)[0]
    assert np.abs(a - b).max() < 1e-6


def test_bad_checkpoints(reference_dir: Path, tmp_path: Path) -> None:
    from facelib.models.convert.faceformer import build_package

    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConversionError, match="not a readable"):
        build_package({"checkpoint": junk}, tmp_path / "a", dataset="vocaset")
    ckpt = reference_dir / "faceformer_vocaset_tiny_seed1.pth"
    with pytest.raises(ConversionError, match="encoder_heads"):  # width 96 is not a multiple of 64
        build_package({"checkpoint": ckpt}, tmp_path / "b", dataset="vocaset")
    with pytest.raises(ConversionError, match="period"):  # vocaset weights declared as BIWI
        build_package({"checkpoint": ckpt}, tmp_path / "c", dataset="biwi", encoder_heads=4)
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(ConversionError, match="not a FaceFormer"):
        build_package({"checkpoint": other}, tmp_path / "d", dataset="vocaset")


def test_template_and_faces_in_package(reference_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    from facelib.models.convert.faceformer import build_package

    pkg = build_package(
        {
            "checkpoint": reference_dir / "faceformer_vocaset_tiny_seed1.pth",
            "template": media_dir / "meshes" / "FLAME_sample.ply",
        },
        tmp_path / "t",
        dataset="vocaset",
        encoder_heads=4,
    )
    assert {"template", "faces", "style"} <= set(pkg.card.files)
    assert np.load(pkg.path("template")).shape == (5023, 3)
    assert np.load(pkg.path("faces")).shape == (9976, 3)
