"""A small seeded MobileNetV3-like blendshape regressor in torch, exported to ONNX (tests only).

Needs torch (the ``convert`` extra); callers skip with ``pytest.importorskip("torch")`` first.
The net is random but seeded, with non-trivial batch-norm statistics so eval-mode BN matters.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from facelib.processing.arkit import ARKIT_NAMES, MEDIAPIPE_NAMES

SIZE = (96, 80)  # (height, width): deliberately not square
NAMES_51 = [n for n in MEDIAPIPE_NAMES if n != "_neutral"][::-1]  # 51 ARKit names, no tongueOut, reversed
NAMES_57 = [n[0].upper() + n[1:] for n in ARKIT_NAMES] + ["HeadYaw", "HeadPitch", "HeadRoll", "JawOpenAux", "Gaze"]


class _Block(nn.Module):
    """Inverted residual with depthwise conv, squeeze-excite and hard-swish (MobileNetV3 style)."""

    def __init__(self, cin: int, cexp: int, cout: int, stride: int) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(cin, cexp, 1, bias=False), nn.BatchNorm2d(cexp), nn.Hardswish())
        self.dw = nn.Sequential(
            nn.Conv2d(cexp, cexp, 3, stride, 1, groups=cexp, bias=False), nn.BatchNorm2d(cexp), nn.Hardswish()
        )
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(cexp, 8, 1), nn.ReLU(), nn.Conv2d(8, cexp, 1), nn.Hardsigmoid()
        )
        self.project = nn.Sequential(nn.Conv2d(cexp, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.expand(x))
        y = self.project(y * self.se(y))
        return x + y if self.residual else y


class TinyMobileNetV3(nn.Module):
    """Stem, three inverted-residual blocks, pooled head and a linear layer of ``outputs``."""

    def __init__(self, outputs: int, nhwc: bool = False) -> None:
        super().__init__()
        self.nhwc = nhwc
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        self.blocks = nn.Sequential(_Block(16, 32, 16, 1), _Block(16, 48, 24, 2), _Block(24, 64, 24, 1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 64), nn.Hardswish())
        self.fc = nn.Linear(64, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nhwc:
            x = x.permute(0, 3, 1, 2)
        return self.fc(self.head(self.blocks(self.stem(x))))


def make_net(outputs: int, seed: int, nhwc: bool = False) -> TinyMobileNetV3:
    """The net with ``outputs`` outputs, weights drawn from ``seed``, in eval mode."""
    torch.manual_seed(seed)
    net = TinyMobileNetV3(outputs, nhwc)
    with torch.no_grad():  # non-trivial BN statistics so eval-mode BN matters
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None and m.running_var is not None:
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        net.fc.weight.mul_(4.0)
    return net.eval()


def export(net: nn.Module, path: Path, shape: tuple[int, ...]) -> Path:
    """Export ``net`` to ONNX at ``path`` (input ``image`` of ``shape``, batch dynamic; opset 17)."""
    import onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (torch.zeros(*shape),),
            os.fspath(path),
            input_names=["image"],
            output_names=["weights"],
            dynamic_axes={"image": {0: "N"}, "weights": {0: "N"}},
            opset_version=17,
            dynamo=False,
        )
    model = onnx.load(os.fspath(path))
    model.ir_version = 10
    onnx.save(model, os.fspath(path))
    return path
