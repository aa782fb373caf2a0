"""PyTorch modules of the First Order Motion Model, written for export (imported lazily: needs torch).

The module and parameter names follow the released checkpoints (``vox-cpk.pth.tar``,
``taichi-cpk.pth.tar``) so their ``generator`` and ``kp_detector`` state dicts load unchanged.
The computation follows the published model; the generator is split for export into a
source-only part (:class:`SourceEncoder`, run once per source image) and a per-frame part
(:class:`FrameGenerator`), and the 2x2 jacobian inverse is written in closed form so the graph
needs only standard ONNX operators (``GridSample`` from opset 16).

Conventions: images are float32 NCHW RGB in [0, 1]; keypoints are (x, y) in [-1, 1] with -1/1 at
the centres of the corner pixels; jacobians are (2, 2) matrices acting on (x, y) column vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Variance of the Gaussian keypoint heatmaps of the dense motion network (upstream default).
KP_VARIANCE = 0.01
BN_EPS = 1e-5


def coordinate_grid(height: int, width: int) -> torch.Tensor:
    """(H, W, 2) grid of (x, y) in [-1, 1], corners of the grid at -1 and 1."""
    x = torch.arange(width, dtype=torch.float32)
    y = torch.arange(height, dtype=torch.float32)
    x = 2 * (x / (width - 1)) - 1
    y = 2 * (y / (height - 1)) - 1
    return torch.stack([x.view(1, -1).expand(height, width), y.view(-1, 1).expand(height, width)], dim=2)


def inverse_2x2(m: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of (..., 2, 2) matrices: [[d, -b], [-c, a]] / (ad - bc)."""
    a, b = m[..., 0, 0], m[..., 0, 1]
    c, d = m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    row0 = torch.stack([d, -b], dim=-1)
    row1 = torch.stack([-c, a], dim=-1)
    return torch.stack([row0, row1], dim=-2) / det[..., None, None]


def matmul_2x2(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Product of (..., 2, 2) matrices written out (exports to element-wise ops)."""
    r00 = p[..., 0, 0] * q[..., 0, 0] + p[..., 0, 1] * q[..., 1, 0]
    r01 = p[..., 0, 0] * q[..., 0, 1] + p[..., 0, 1] * q[..., 1, 1]
    r10 = p[..., 1, 0] * q[..., 0, 0] + p[..., 1, 1] * q[..., 1, 0]
    r11 = p[..., 1, 0] * q[..., 0, 1] + p[..., 1, 1] * q[..., 1, 1]
    return torch.stack([torch.stack([r00, r01], -1), torch.stack([r10, r11], -1)], -2)


# --- building blocks (parameter names as in the released checkpoints) ------------------------


class _ConvNormRelu(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, padding: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=kernel, padding=padding)
        self.norm = nn.BatchNorm2d(cout, eps=BN_EPS, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class SameBlock(_ConvNormRelu):
    """conv -> batch norm -> ReLU at the same resolution."""


class DownBlock(_ConvNormRelu):
    """conv 3x3 -> batch norm -> ReLU -> 2x2 average pool."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(super().forward(x), 2)


class UpBlock(_ConvNormRelu):
    """nearest x2 upsampling -> conv 3x3 -> batch norm -> ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(relu(bn(conv(relu(bn(x))))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm2d(channels, eps=BN_EPS, affine=True)
        self.norm2 = nn.BatchNorm2d(channels, eps=BN_EPS, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


def _width(expansion: int, level: int, maximum: int) -> int:
    return min(maximum, expansion * (2**level))


class HourglassEncoder(nn.Module):
    def __init__(self, expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock(
                in_features if i == 0 else _width(expansion, i, max_features), _width(expansion, i + 1, max_features)
            )
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class HourglassDecoder(nn.Module):
    def __init__(self, expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            factor = 1 if i == num_blocks - 1 else 2
            blocks.append(UpBlock(factor * _width(expansion, i + 1, max_features), _width(expansion, i, max_features)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = expansion + in_features

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        out = skips[-1]
        for j, block in enumerate(self.up_blocks):
            out = torch.cat([block(out), skips[-2 - j]], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net with skip concatenation; output has ``expansion + in_features`` channels."""

    def __init__(self, expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        self.encoder = HourglassEncoder(expansion, in_features, num_blocks, max_features)
        self.decoder = HourglassDecoder(expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AntiAliasDownsample(nn.Module):
    """Gaussian blur (sigma = (1/scale - 1)/2, kernel 2*round(4 sigma)+1) then strided subsampling.

    The kernel is a buffer named ``weight`` (it is part of the released state dicts).
    """

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        sigma = (1.0 / scale - 1.0) / 2.0
        size = 2 * round(sigma * 4) + 1
        self.pad_before = size // 2
        self.pad_after = self.pad_before - 1 if size % 2 == 0 else self.pad_before
        t = torch.arange(size, dtype=torch.float32)
        g = torch.exp(-((t - (size - 1) / 2) ** 2) / (2 * sigma**2))
        kernel = g[:, None] * g[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1))
        self.channels = channels
        self.step = int(1.0 / scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, q = self.pad_before, self.pad_after
        weight: torch.Tensor = self.weight  # type: ignore[assignment]
        out = F.conv2d(F.pad(x, (p, q, p, q)), weight, groups=self.channels)
        return out[:, :, :: self.step, :: self.step]


# --- keypoint detector ---------------------------------------------------------------------


class KPDetector(nn.Module):
    """Keypoint detector: image (N, 3, H, W) -> value (N, K, 2), jacobian (N, K, 2, 2)."""

    def __init__(
        self,
        block_expansion: int,
        num_kp: int,
        num_channels: int,
        max_features: int,
        num_blocks: int,
        temperature: float,
        estimate_jacobian: bool = False,
        scale_factor: float = 1,
        single_jacobian_map: bool = False,
        pad: int = 0,
    ) -> None:
        super().__init__()
        self.predictor = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=7, padding=pad)
        self.num_kp = num_kp
        self.num_jacobian_maps = (1 if single_jacobian_map else num_kp) if estimate_jacobian else 0
        self.jacobian = (
            nn.Conv2d(self.predictor.out_filters, 4 * self.num_jacobian_maps, kernel_size=7, padding=pad)
            if estimate_jacobian
            else None
        )
        self.temperature = float(temperature)
        self.scale_factor = float(scale_factor)
        self.down = AntiAliasDownsample(num_channels, scale_factor) if scale_factor != 1 else None

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.down(image) if self.down is not None else image
        features = self.predictor(x)
        logits = self.kp(features)
        n, k, h, w = logits.shape
        heat = F.softmax(logits.reshape(n, k, h * w) / self.temperature, dim=2).reshape(n, k, h, w)
        grid = coordinate_grid(h, w)
        value = (heat.unsqueeze(-1) * grid.view(1, 1, h, w, 2)).sum(dim=(2, 3))
        if self.jacobian is None:
            eye = torch.eye(2, dtype=value.dtype).view(1, 1, 2, 2)
            return value, eye.expand(n, k, 2, 2) + 0 * value.unsqueeze(-1)
        maps = self.jacobian(features).reshape(n, self.num_jacobian_maps, 4, h, w)
        jac = (heat.unsqueeze(2) * maps).reshape(n, k, 4, h * w).sum(dim=-1)
        return value, jac.reshape(n, k, 2, 2)


# --- generator ---------------------------------------------------------------------------


class DenseMotionNetwork(nn.Module):
    """Predicts the dense backward deformation and the occlusion map from sparse keypoint motions."""

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_kp: int,
        num_channels: int,
        estimate_occlusion_map: bool = False,
        scale_factor: float = 1,
        kp_variance: float = KP_VARIANCE,
    ) -> None:
        super().__init__()
        self.hourglass = Hourglass(block_expansion, (num_kp + 1) * (num_channels + 1), num_blocks, max_features)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.occlusion = (
            nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=7, padding=3) if estimate_occlusion_map else None
        )
        self.num_kp = num_kp
        self.num_channels = num_channels
        self.kp_variance = float(kp_variance)
        self.scale_factor = float(scale_factor)
        self.down = AntiAliasDownsample(num_channels, scale_factor) if scale_factor != 1 else None

    def downsample(self, image: torch.Tensor) -> torch.Tensor:
        return self.down(image) if self.down is not None else image

    def forward(
        self,
        small: torch.Tensor,
        kp_source: torch.Tensor,
        jac_source: torch.Tensor,
        kp_driving: torch.Tensor,
        jac_driving: torch.Tensor,
        align_corners: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``small`` is the (already downsampled) source, (N, C, h, w); returns deformation, occlusion."""
        n, c, h, w = small.shape
        k = self.num_kp
        grid = coordinate_grid(h, w).view(1, 1, h, w, 2)
        # Gaussian heatmap difference, background channel first.
        g_d = torch.exp(-0.5 * ((grid - kp_driving.view(n, k, 1, 1, 2)) ** 2).sum(-1) / self.kp_variance)
        g_s = torch.exp(-0.5 * ((grid - kp_source.view(n, k, 1, 1, 2)) ** 2).sum(-1) / self.kp_variance)
        heat = torch.cat([torch.zeros_like(g_d[:, :1]), g_d - g_s], dim=1).unsqueeze(2)
        # Sparse motions: T_k(z) = J_s inv(J_d) (z - kp_d) + kp_s, plus the identity.
        jac = matmul_2x2(jac_source, inverse_2x2(jac_driving)).view(n, k, 1, 1, 2, 2)
        dz = grid - kp_driving.view(n, k, 1, 1, 2)
        tx = jac[..., 0, 0] * dz[..., 0] + jac[..., 0, 1] * dz[..., 1]
        ty = jac[..., 1, 0] * dz[..., 0] + jac[..., 1, 1] * dz[..., 1]
        moved = torch.stack([tx, ty], dim=-1) + kp_source.view(n, k, 1, 1, 2)
        motions = torch.cat([grid.expand(n, 1, h, w, 2), moved], dim=1)  # (n, k+1, h, w, 2)
        repeated = small.unsqueeze(1).expand(n, k + 1, c, h, w).reshape(n * (k + 1), c, h, w)
        deformed = F.grid_sample(
            repeated,
            motions.reshape(n * (k + 1), h, w, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=align_corners,
        ).reshape(n, k + 1, c, h, w)
        features = self.hourglass(torch.cat([heat, deformed], dim=2).reshape(n, (k + 1) * (c + 1), h, w))
        mask = F.softmax(self.mask(features), dim=1).unsqueeze(-1)  # (n, k+1, h, w, 1)
        deformation = (motions * mask).sum(dim=1)  # (n, h, w, 2)
        occlusion = torch.sigmoid(self.occlusion(features)) if self.occlusion is not None else None
        return deformation, occlusion


class OcclusionAwareGenerator(nn.Module):
    """The released generator (key layout of the checkpoints' ``generator`` state dict)."""

    def __init__(
        self,
        num_channels: int,
        num_kp: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        num_bottleneck_blocks: int,
        estimate_occlusion_map: bool = False,
        dense_motion_params: Mapping[str, Any] | None = None,
        estimate_jacobian: bool = False,
    ) -> None:
        super().__init__()
        if dense_motion_params is None:
            raise ValueError("a generator without a dense motion network cannot animate")
        self.dense_motion_network = DenseMotionNetwork(
            num_kp=num_kp,
            num_channels=num_channels,
            estimate_occlusion_map=estimate_occlusion_map,
            **dict(dense_motion_params),
        )
        self.first = SameBlock(num_channels, block_expansion, 7, 3)
        self.down_blocks = nn.ModuleList(
            DownBlock(_width(block_expansion, i, max_features), _width(block_expansion, i + 1, max_features))
            for i in range(num_down_blocks)
        )
        self.up_blocks = nn.ModuleList(
            UpBlock(
                _width(block_expansion, num_down_blocks - i, max_features),
                _width(block_expansion, num_down_blocks - i - 1, max_features),
            )
            for i in range(num_down_blocks)
        )
        self.bottleneck = nn.Sequential()
        width = _width(block_expansion, num_down_blocks, max_features)
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock(width))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        return out

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        out = self.bottleneck(features)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))


def _resize_deformation(deformation: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if deformation.shape[1] == height and deformation.shape[2] == width:
        return deformation
    resized = F.interpolate(deformation.permute(0, 3, 1, 2), size=(height, width), mode="bilinear", align_corners=False)
    return resized.permute(0, 2, 3, 1)


# --- export wrappers ---------------------------------------------------------------------


class SourceEncoder(nn.Module):
    """Source-only part of the generator: source (S, 3, H, W) -> features, downsampled source."""

    def __init__(self, generator: OcclusionAwareGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.generator.encode(source), self.generator.dense_motion_network.downsample(source)


class FrameGenerator(nn.Module):
    """Per-frame part of the generator.

    Inputs: source features (S, C, h', w') and downsampled source (S, 3, h, w) from
    :class:`SourceEncoder` with S = 1 (broadcast to every frame) or S = N; source keypoints
    (S, K, 2), (S, K, 2, 2); driving keypoints (N, K, 2), (N, K, 2, 2).  Output: prediction
    (N, 3, H, W) in [0, 1].
    """

    def __init__(self, generator: OcclusionAwareGenerator, align_corners: bool) -> None:
        super().__init__()
        self.generator = generator
        self.align_corners = bool(align_corners)

    def forward(
        self,
        source_features: torch.Tensor,
        source_small: torch.Tensor,
        kp_source_value: torch.Tensor,
        kp_source_jacobian: torch.Tensor,
        kp_driving_value: torch.Tensor,
        kp_driving_jacobian: torch.Tensor,
    ) -> torch.Tensor:
        n = kp_driving_value.shape[0]
        feats = source_features.expand(n, -1, -1, -1)
        small = source_small.expand(n, -1, -1, -1)
        kp_s = kp_source_value.expand(n, -1, -1)
        jac_s = kp_source_jacobian.expand(n, -1, -1, -1)
        dense = self.generator.dense_motion_network
        deformation, occlusion = dense(small, kp_s, jac_s, kp_driving_value, kp_driving_jacobian, self.align_corners)
        h, w = feats.shape[2], feats.shape[3]
        deformation = _resize_deformation(deformation, h, w)
        out = F.grid_sample(feats, deformation, mode="bilinear", padding_mode="zeros", align_corners=self.align_corners)
        if occlusion is not None:
            if occlusion.shape[2] != h or occlusion.shape[3] != w:
                occlusion = F.interpolate(occlusion, size=(h, w), mode="bilinear", align_corners=False)
            out = out * occlusion
        return self.generator.decode(out)


def build_modules(model_params: Mapping[str, Any]) -> tuple[KPDetector, OcclusionAwareGenerator]:
    """The kp detector and generator for the ``model_params`` section of an upstream config."""
    common = dict(model_params["common_params"])
    kp = KPDetector(**dict(model_params["kp_detector_params"]), **common)
    gen = OcclusionAwareGenerator(**dict(model_params["generator_params"]), **common)
    return kp.eval(), gen.eval()


#: Keys a checkpoint may lack without changing the model: batch-norm counters (not used in eval
#: mode; absent from checkpoints of old PyTorch versions) and the fixed Gaussian kernels of the
#: anti-aliased downsampling (recomputed identically here).
OPTIONAL_SUFFIXES = ("num_batches_tracked", "down.weight")


def load_state(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> Sequence[str]:
    """Load ``state`` strictly (but see :data:`OPTIONAL_SUFFIXES`); returns the optional keys missing.

    Raises ``ValueError`` naming missing/unexpected keys and ``RuntimeError`` for shape mismatches.
    """
    result = module.load_state_dict(dict(state), strict=False)
    optional = [k for k in result.missing_keys if k.endswith(OPTIONAL_SUFFIXES)]
    missing = [k for k in result.missing_keys if k not in optional]
    problems = [f"missing {k}" for k in missing] + [f"unexpected {k}" for k in result.unexpected_keys]
    if problems:
        shown = ", ".join(problems[:8]) + (f" (+{len(problems) - 8} more)" if len(problems) > 8 else "")
        raise ValueError(f"{what} state dict does not match the config: {shown}")
    return optional
