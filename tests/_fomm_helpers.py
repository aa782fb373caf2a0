"""Helpers shared by the FOMM tests: a tiny random checkpoint at 64x64 and a UltraFace adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facelib.processing.boxes import hard_nms
from facelib.tasks.detection import FaceBox

#: A very small FOMM in the upstream YAML layout, 64x64 frames, for fast streaming tests.
SMALL_CONFIG: dict[str, Any] = {
    "dataset_params": {"frame_shape": [64, 64, 3]},
    "model_params": {
        "common_params": {"num_kp": 5, "num_channels": 3, "estimate_jacobian": True},
        "kp_detector_params": {
            "temperature": 0.1,
            "block_expansion": 4,
            "max_features": 16,
            "scale_factor": 0.5,
            "num_blocks": 2,
        },
        "generator_params": {
            "block_expansion": 4,
            "max_features": 16,
            "num_down_blocks": 2,
            "num_bottleneck_blocks": 1,
            "estimate_occlusion_map": True,
            "dense_motion_params": {"block_expansion": 4, "max_features": 16, "num_blocks": 2, "scale_factor": 0.5},
        },
    },
}


def make_checkpoint(path: Path, config: dict[str, Any], seed: int = 0, with_optimizer: bool = True) -> Path:
    """A random checkpoint in the released layout (generator, kp_detector, optimizer state, epoch)."""
    import torch

    from facelib.models.convert import fomm_torch

    torch.manual_seed(seed)
    kp, gen = fomm_torch.build_modules(config["model_params"])
    for module in [*kp.modules(), *gen.modules()]:
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    if kp.jacobian is not None:  # near identity, as a trained detector gives
        torch.nn.init.normal_(kp.jacobian.weight, std=1e-3)
    data: dict[str, Any] = {"generator": gen.state_dict(), "kp_detector": kp.state_dict(), "epoch": 3}
    if with_optimizer:
        opt = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
        for p in gen.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()  # the state now holds exp_avg / exp_avg_sq / step tensors, as a trained checkpoint
        data["optimizer_generator"] = opt.state_dict()
    torch.save(data, path)
    return path


class UltraFaceAdapter:
    """Minimal FaceDetectorLike over the real UltraFace RFB-320 ONNX (test-local)."""

    def __init__(self, path: Path, threshold: float = 0.7) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.threshold = threshold

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        import cv2

        h, w = image.shape[:2]
        x = cv2.resize(image, (320, 240)).astype(np.float32)
        x = ((x - 127.0) / 128.0).transpose(2, 0, 1)[None]
        scores, boxes = self.session.run(None, {"input": x})
        prob = scores[0, :, 1]
        keep = prob > self.threshold
        if not keep.any():
            return []
        b = boxes[0][keep] * np.array([w, h, w, h], dtype=np.float32)
        p = prob[keep]
        idx = hard_nms(b, p, 0.3)
        return [FaceBox(b[i], float(p[i])) for i in idx]
