"""What a ``regressor`` blendshape card declares, read and validated (:class:`RegressorSpec`).

Used by the converter (:mod:`facelib.models.convert.regressor`) to validate a package it writes
and by :class:`~facelib.tasks.blendshape_regressor.RegressorEngine` to run one; the schema is in
docs/regressor-packages.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from facelib.errors import ModelCardError
from facelib.models.package import ModelPackage
from facelib.processing.arkit import ARKIT_NAMES, arkit_index
from facelib.processing.regressor_crop import INTERPOLATIONS

#: Head-pose output units a card may declare, as factors to degrees.
HEAD_POSE_UNITS = {"degrees": 1.0, "radians": 180.0 / np.pi, "livelink": 180.0}


@attrs.frozen
class RegressorSpec:
    """Everything the engine reads from a regressor card (validated)."""

    input_name: str
    output_name: str
    size: tuple[int, int]  # (height, width)
    layout: str  # "NCHW" or "NHWC"
    bgr: bool
    pixel_scale: float
    mean: np.ndarray  # (3,) float32
    std: np.ndarray  # (3,) float32
    margin: float
    square: bool
    interpolation: str
    names: tuple[str, ...]
    clip: bool
    activation: str
    arkit_columns: np.ndarray  # (52,) index into the outputs, -1 = absent
    extra_columns: dict[str, int]
    head_pose_columns: tuple[int, int, int] | None
    head_pose_factor: float
    min_face: float

    @classmethod
    def from_package(cls, package: ModelPackage) -> RegressorSpec:
        card = package.card
        where = f"regressor card of {package.root}"
        pre, out = card.preprocessing, card.outputs
        regressor = card.file("regressor")
        if len(regressor.inputs) != 1:
            raise ModelCardError(f"{where}: the regressor must have exactly one image input")
        try:
            size = tuple(int(v) for v in pre["input_size"])
            layout = str(pre.get("layout", "NCHW")).upper()
            colour = str(pre.get("colour_order", "RGB")).upper()
            pixel_scale = float(pre.get("pixel_scale", 1.0 / 255.0))
            mean = np.asarray(pre.get("mean", [0.0, 0.0, 0.0]), np.float32).reshape(-1)
            std = np.asarray(pre.get("std", [1.0, 1.0, 1.0]), np.float32).reshape(-1)
            margin = float(pre.get("margin", 0.0))
            make_square = bool(pre.get("square", True))
            interpolation = str(pre.get("interpolation", "linear"))
            min_face = float(pre.get("min_face", 8.0))
            names = tuple(str(n) for n in out["names"])
            clip = bool(out.get("clip", True))
            activation = str(out.get("activation", "none"))
            output_name = str(out.get("output") or (regressor.outputs[0].name if regressor.outputs else ""))
            head = out.get("head_pose")
        except KeyError as exc:
            raise ModelCardError(f"{where} lacks {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ModelCardError(f"{where} has a malformed value: {exc}") from exc
        problems = []
        if len(size) != 2 or min(size) < 1:
            problems.append(f"input_size must be [height, width], got {pre.get('input_size')}")
        if layout not in ("NCHW", "NHWC"):
            problems.append(f"layout must be NCHW or NHWC, got {layout!r}")
        if colour not in ("RGB", "BGR"):
            problems.append(f"colour_order must be RGB or BGR, got {colour!r}")
        if mean.shape not in ((1,), (3,)) or std.shape not in ((1,), (3,)) or (std == 0).any():
            problems.append("mean and std need 1 or 3 values and std must not be 0")
        if margin < 0 or margin > 2:
            problems.append(f"margin must be in [0, 2], got {margin}")
        if interpolation not in INTERPOLATIONS:
            problems.append(f"interpolation must be one of {sorted(INTERPOLATIONS)}")
        if activation not in ("none", "sigmoid"):
            problems.append(f"activation must be 'none' or 'sigmoid', got {activation!r}")
        if not names:
            problems.append("outputs.names is empty")
        if len(set(names)) != len(names):
            problems.append("outputs.names has duplicates")
        if regressor.outputs and output_name not in {o.name for o in regressor.outputs}:
            problems.append(f"output {output_name!r} is not an output of the regressor file")
        if problems:
            raise ModelCardError(f"{where}: " + "; ".join(problems))

        head_cols: tuple[int, int, int] | None = None
        factor = 1.0
        if head:
            try:
                head_names = [str(n) for n in head["names"]]
                factor = HEAD_POSE_UNITS[str(head.get("unit", "degrees"))]
                cols = [names.index(n) for n in head_names]
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelCardError(
                    f"{where}: outputs.head_pose needs 'names' (3 of outputs.names: yaw, pitch, roll) "
                    f"and 'unit' in {sorted(HEAD_POSE_UNITS)} ({exc})"
                ) from None
            if len(cols) != 3:
                raise ModelCardError(f"{where}: outputs.head_pose.names needs 3 names (yaw, pitch, roll)")
            head_cols = (cols[0], cols[1], cols[2])
        arkit_columns = np.full(len(ARKIT_NAMES), -1, np.int64)
        extra: dict[str, int] = {}
        for col, name in enumerate(names):
            if head_cols is not None and col in head_cols:
                continue
            idx = arkit_index(name)
            if idx is None:
                extra[name] = col
            elif arkit_columns[idx] >= 0:
                raise ModelCardError(
                    f"{where}: outputs {names[arkit_columns[idx]]!r} and {name!r} both map to ARKit "
                    f"{ARKIT_NAMES[idx]!r}"
                )
            else:
                arkit_columns[idx] = col

        spec = cls(
            input_name=regressor.inputs[0].name,
            output_name=output_name,
            size=(size[0], size[1]),
            layout=layout,
            bgr=colour == "BGR",
            pixel_scale=pixel_scale,
            mean=mean,
            std=std,
            margin=margin,
            square=make_square,
            interpolation=interpolation,
            names=names,
            clip=clip,
            activation=activation,
            arkit_columns=arkit_columns,
            extra_columns=extra,
            head_pose_columns=head_cols,
            head_pose_factor=factor,
            min_face=min_face,
        )
        spec.check_shapes(regressor.inputs[0].shape, regressor.outputs[0].shape if regressor.outputs else None, where)
        return spec

    def check_shapes(self, input_shape: Sequence[Any], output_shape: Sequence[Any] | None, where: str) -> None:
        """Raise :class:`ModelCardError` when fixed dims of the ONNX I/O contradict the card."""
        if len(input_shape) != 4:
            raise ModelCardError(f"{where}: the regressor input must be rank 4, the card says {list(input_shape)}")
        h, w = self.size
        want = (None, 3, h, w) if self.layout == "NCHW" else (None, h, w, 3)
        for have, expect in zip(input_shape, want):
            if expect is not None and isinstance(have, int) and have > 0 and have != expect:
                raise ModelCardError(
                    f"{where}: regressor input shape {list(input_shape)} does not fit input_size {[h, w]} "
                    f"and layout {self.layout}"
                )
        if output_shape:
            last = output_shape[-1]
            if isinstance(last, int) and last > 0 and last != len(self.names):
                raise ModelCardError(f"{where}: the regressor has {last} outputs but the card names {len(self.names)}")

    def tensor(self, crops: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 RGB crops -> the model's input tensor (float32)."""
        x = crops[..., ::-1] if self.bgr else crops
        x = (x.astype(np.float32) * np.float32(self.pixel_scale) - self.mean) / self.std
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=np.float32)
