"""Downloaded torch checkpoints are loaded weights-only: a malicious pickle never runs."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest

from facelib.errors import ConversionError, ModelError, ModelFileError
from facelib.models.checkpoints import load_torch_checkpoint

pytestmark = pytest.mark.convert


class _Payload:
    """Unpickling this would create a marker file (stands in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "pwned"))  # type: ignore[return-value]


def test_real_checkpoints_load_weights_only(models_dir: Path, reference_dir: Path) -> None:
    pytest.importorskip("torch")
    faceboxes = load_torch_checkpoint(models_dir / "faceboxes" / "FaceBoxesProd.pth")  # legacy pickle format
    assert "conv1.conv.weight" in faceboxes
    fomm = load_torch_checkpoint(reference_dir / "fomm_tiny_seed1.pth.tar")
    assert {"generator", "kp_detector"} <= set(fomm)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_malicious_pickle_is_refused_and_not_run(tmp_path: Path, protocol: int) -> None:
    torch = pytest.importorskip("torch")
    marker = tmp_path / "marker.txt"
    evil = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "surprise": _Payload(marker)}, evil, pickle_protocol=protocol)
    expected = ConversionError if protocol == 2 else ModelError  # torch's default protocol is 2
    with warnings.catch_warnings(), pytest.raises(expected) as info:
        warnings.simplefilter("ignore")  # torch warns about protocols other than its default
        load_torch_checkpoint(evil)
    if protocol == 2:
        assert "does not unpickle untrusted files" in str(info.value)
    assert not marker.exists()


def test_bad_files(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    with pytest.raises(ModelFileError, match="not found"):
        load_torch_checkpoint(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelFileError, match="not a readable torch checkpoint"):
        load_torch_checkpoint(junk)


def test_every_converter_reads_checkpoints_the_same_way(tmp_path: Path) -> None:
    """FaceBoxes, FaceFormer and FOMM load through load_torch_checkpoint: one error per problem,
    of a class every caller catches (a missing path is also an InputError, a broken file is both a
    ModelFileError and a ConversionError), and a malicious pickle is refused by all three."""
    torch = pytest.importorskip("torch")
    from facelib.errors import InputError
    from facelib.models.checkpoints import CheckpointError, CheckpointNotFoundError
    from facelib.models.convert import faceboxes, faceformer, fomm

    loaders = [faceboxes.load_state_dict, faceformer.load_state_dict, fomm.load_checkpoint]
    junk, empty, evil = tmp_path / "junk.pth", tmp_path / "empty.pth", tmp_path / "evil.pth"
    junk.write_bytes(b"not a checkpoint")
    empty.write_bytes(b"")
    marker = tmp_path / "marker.txt"
    torch.save({"weight": torch.zeros(2), "surprise": _Payload(marker)}, evil)
    for load in loaders:
        with pytest.raises(CheckpointNotFoundError, match="not found") as missing:
            load(tmp_path / "missing.pth")
        assert isinstance(missing.value, InputError | ModelFileError | ConversionError)
        with pytest.raises(CheckpointError, match="empty"):
            load(empty)
        with pytest.raises(CheckpointError, match=r"not a readable torch checkpoint.*weights-only"):
            load(junk)
        with pytest.raises(ConversionError, match="does not unpickle untrusted files"):
            load(evil)
    assert not marker.exists()
