"""``facelib check headpose`` on the Sophon backend (SAIL + TPU-MLIR doubles): the real FSA-Net
and UltraFace models compiled to bmodels, the whole task compared with ONNX Runtime per field."""

from __future__ import annotations

from pathlib import Path

from facelib.tools.task_tools import check_task, prepare


def test_headpose_check_on_sophon(models_dir: Path, sophon: type, tmp_path: Path) -> None:
    from facelib.backends import get_backend
    from facelib.models.convert import fsanet, ultraface

    stems = {
        "capsule": "fsanet_capsule_3_16_2_21_5",
        "var_capsule": "fsanet_var_capsule_3_16_2_21_5",
        "noS_capsule": "fsanet_noS_capsule_3_16_2_192_5",
    }
    pose = fsanet.build_package({r: models_dir / "fsanet" / f"{s}.onnx" for r, s in stems.items()}, tmp_path / "fs")
    det_file = models_dir / "ultraface" / ultraface.VARIANTS["RFB-320"][0]
    det = ultraface.build_package({"detector": det_file}, tmp_path / "uf", variant="RFB-320")
    image = models_dir.parent / "media" / "images" / "two_people.jpg"
    run = prepare("headpose", pose.root, [image], detector=str(det.root))
    backend = get_backend("sophon")
    assert backend.name == "sophon"
    fields = {d.output: d for d in check_task(run, backend, "onnxruntime")}
    assert {"yaw", "pitch", "roll", "box", "score", "variants.capsule"} <= set(fields)
    assert fields["yaw"].shape == (2,)  # both faces found on the TPU too
    assert all(d.max_abs <= 0.01 for d in fields.values())
