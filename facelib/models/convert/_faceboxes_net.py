"""FaceBoxes network in PyTorch (``convert`` extra), state-dict compatible with ``FaceBoxesProd.pth``.

Only imported by :mod:`facelib.models.convert.faceboxes` after torch was found.  Layer layout
(facts from cleardusk/3DDFA_V2 ``FaceBoxes/models/faceboxes.py``): CReLU conv 7×7/4 (3→24,
concatenated with its negation → 48), max-pool 3/2, CReLU conv 5×5/2 (48→64 → 128), max-pool
3/2, three Inception blocks (128 → 4×32), conv 1×1 128→128 + conv 3×3/2 128→256, conv 1×1
256→128 + conv 3×3/2 128→256.  Heads (3×3 convs with bias) on the three sources: 21, 1 and 1
anchors per cell.  Every "basic" conv is conv (no bias) + BatchNorm (eps 1e-5) + ReLU.

:class:`FaceBoxesNet` returns raw outputs: ``loc`` (N, P, 4) box offsets and ``conf`` (N, P, 2)
class logits (softmax is applied in numpy post-processing).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm; ReLU applied by the caller (plain or CReLU)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class BasicConv(ConvBN):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class CReLUConv(ConvBN):
    """Conv + BN, then ReLU of the concatenation ``[x, -x]`` (doubles the channels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(torch.cat([x, -x], dim=1))


class Inception(nn.Module):
    """Four 32-channel branches: 1×1; avg-pool 3 + 1×1; 1×1 + 3×3; 1×1 + 3×3 + 3×3."""

    def __init__(self) -> None:
        super().__init__()
        self.branch1x1 = BasicConv(128, 32, 1)
        self.branch1x1_2 = BasicConv(128, 32, 1)
        self.branch3x3_reduce = BasicConv(128, 24, 1)
        self.branch3x3 = BasicConv(24, 32, 3, padding=1)
        self.branch3x3_reduce_2 = BasicConv(128, 24, 1)
        self.branch3x3_2 = BasicConv(24, 32, 3, padding=1)
        self.branch3x3_3 = BasicConv(32, 32, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch1x1_2(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        c = self.branch3x3(self.branch3x3_reduce(x))
        d = self.branch3x3_3(self.branch3x3_2(self.branch3x3_reduce_2(x)))
        return torch.cat([a, b, c, d], dim=1)


class FaceBoxesNet(nn.Module):
    """FaceBoxes with upstream parameter names; ``forward(x)`` -> (loc, conf logits)."""

    #: Anchors per cell on each detection source (21 = 4×4 + 2×2 + 1 on the first).
    ANCHORS = (21, 1, 1)

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = CReLUConv(3, 24, 7, stride=4, padding=3)
        self.conv2 = CReLUConv(48, 64, 5, stride=2, padding=2)
        self.inception1 = Inception()
        self.inception2 = Inception()
        self.inception3 = Inception()
        self.conv3_1 = BasicConv(128, 128, 1)
        self.conv3_2 = BasicConv(128, 256, 3, stride=2, padding=1)
        self.conv4_1 = BasicConv(256, 128, 1)
        self.conv4_2 = BasicConv(128, 256, 3, stride=2, padding=1)
        channels = (128, 256, 256)
        self.loc = nn.Sequential(*[nn.Conv2d(c, a * 4, 3, padding=1) for c, a in zip(channels, self.ANCHORS)])
        self.conf = nn.Sequential(
            *[nn.Conv2d(c, a * num_classes, 3, padding=1) for c, a in zip(channels, self.ANCHORS)]
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.conv1(x), kernel_size=3, stride=2, padding=1)
        x = F.max_pool2d(self.conv2(x), kernel_size=3, stride=2, padding=1)
        s1 = self.inception3(self.inception2(self.inception1(x)))
        s2 = self.conv3_2(self.conv3_1(s1))
        s3 = self.conv4_2(self.conv4_1(s2))
        n = x.shape[0]
        locs, confs = [], []
        for source, loc_head, conf_head in zip((s1, s2, s3), self.loc, self.conf):
            locs.append(loc_head(source).permute(0, 2, 3, 1).reshape(n, -1, 4))
            confs.append(conf_head(source).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes))
        return torch.cat(locs, dim=1), torch.cat(confs, dim=1)
