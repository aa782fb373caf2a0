"""Convert First Order Motion Model checkpoints into a ``motion_transfer`` model package.

Sources: ``{"checkpoint": path}`` — a released checkpoint such as ``vox-cpk.pth.tar`` or
``taichi-cpk.pth.tar``: a dict with ``generator`` and ``kp_detector`` state dicts (training keys
such as ``discriminator``, ``optimizer_*`` and ``epoch`` are ignored).  It is read with
``torch.load(weights_only=True)``: no pickled code is executed.

The package holds three ONNX files (opset 17, ``GridSample``; dynamic batch):

``kp_detector``
    ``image`` (N, 3, H, W) float RGB [0, 1] -> ``value`` (N, K, 2), ``jacobian`` (N, K, 2, 2).
``source_encoder``
    ``source`` (S, 3, H, W) -> ``source_features`` (S, C, H/2^d, W/2^d) and ``source_small``
    (S, 3, h, w): everything of the generator that depends on the source image only, so a
    video runs it once.
``generator``
    ``source_features``, ``source_small``, ``kp_source_value`` (S, K, 2),
    ``kp_source_jacobian`` (S, K, 2, 2) with S = 1 or N, and ``kp_driving_value`` (N, K, 2),
    ``kp_driving_jacobian`` (N, K, 2, 2) -> ``prediction`` (N, 3, H, W) in [0, 1].  The 2x2
    jacobian inverse is computed in closed form inside the graph.

The config is an upstream YAML file (``model_params`` section, optional ``dataset_params.frame_shape``
and ``animate_params.normalization_params``) or a built-in preset (:data:`PRESETS`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from facelib._version import __version__
from facelib.backends.base import ShapeRange
from facelib.errors import ConversionError, InputError, require
from facelib.models import checkpoints
from facelib.models.card import ModelCard, ModelFile
from facelib.models.convert._output import writes_whole_package
from facelib.models.package import ModelPackage, read_onnx_specs, sha256_file

OPSET = 17
#: Typical and largest batch recorded in the card for backends that compile for shape ranges.
BATCH_OPT = 4
BATCH_MAX = 16

_VOX_LIKE_MODEL_PARAMS: dict[str, Any] = {
    "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    "kp_detector_params": {
        "temperature": 0.1,
        "block_expansion": 32,
        "max_features": 1024,
        "scale_factor": 0.25,
        "num_blocks": 5,
    },
    "generator_params": {
        "block_expansion": 64,
        "max_features": 512,
        "num_down_blocks": 2,
        "num_bottleneck_blocks": 6,
        "estimate_occlusion_map": True,
        "dense_motion_params": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5, "scale_factor": 0.25},
    },
}

#: Built-in configs: the model sections of upstream ``config/vox-256.yaml`` and
#: ``config/taichi-256.yaml`` (first-order-model @c027484).  Both use the same architecture.
PRESETS: dict[str, dict[str, Any]] = {
    name: {
        "dataset_params": {"frame_shape": [256, 256, 3]},
        "model_params": copy.deepcopy(_VOX_LIKE_MODEL_PARAMS),
        "animate_params": {
            "normalization_params": {
                "adapt_movement_scale": False,
                "use_relative_movement": True,
                "use_relative_jacobian": True,
            }
        },
    }
    for name in ("vox-256", "taichi-256")
}

_REQUIRED = {
    "common_params": ("num_kp", "num_channels"),
    "kp_detector_params": ("temperature", "block_expansion", "max_features", "num_blocks"),
    "generator_params": ("block_expansion", "max_features", "num_down_blocks", "num_bottleneck_blocks"),
}


def load_config(config: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """An upstream-format config as a dict: a preset name, a YAML file path, or a mapping.

    Raises :class:`InputError` for an unknown preset, a missing/unreadable file, or a config
    without the model sections the converter needs.
    """
    if isinstance(config, Mapping):
        data: Any = copy.deepcopy(dict(config))
        where = "config"
    elif str(config) in PRESETS:
        data = copy.deepcopy(PRESETS[str(config)])
        where = f"preset {config}"
    else:
        path = Path(config)
        if not path.is_file():
            raise InputError(
                f"config {config!r} is neither a built-in preset ({', '.join(PRESETS)}) nor an existing YAML file"
            )
        yaml: Any = require("yaml", "convert", "Reading FOMM YAML configs")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read config {path}: {exc}") from exc
        where = str(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("model_params"), Mapping):
        raise InputError(f"{where}: an FOMM config needs a 'model_params' section (upstream YAML format)")
    params = data["model_params"]
    for section, keys in _REQUIRED.items():
        block = params.get(section)
        if not isinstance(block, Mapping):
            raise InputError(f"{where}: model_params.{section} is missing")
        missing = [k for k in keys if k not in block]
        if missing:
            raise InputError(f"{where}: model_params.{section} lacks {missing}")
    if not isinstance(params["generator_params"].get("dense_motion_params"), Mapping):
        raise InputError(f"{where}: model_params.generator_params.dense_motion_params is missing")
    return {
        "dataset_params": {"frame_shape": list(data.get("dataset_params", {}).get("frame_shape", [256, 256, 3]))},
        "model_params": copy.deepcopy(dict(params)),
        "animate_params": {
            "normalization_params": dict(
                data.get("animate_params", {}).get("normalization_params", {})
                or PRESETS["vox-256"]["animate_params"]["normalization_params"]
            )
        },
    }


def _config_name(config: Any) -> str:
    if config is None:
        return DEFAULT_CONFIG
    if isinstance(config, str | os.PathLike) and str(config) in PRESETS:
        return str(config)
    if isinstance(config, str | os.PathLike):
        return Path(config).stem
    return "custom"


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The ``generator`` and ``kp_detector`` state dicts of a checkpoint (weights only).

    Optimizer state and other training keys are dropped; a ``module.`` prefix left by
    ``DataParallel`` is removed.
    """
    data = checkpoints.load_torch_checkpoint(path, "Converting FOMM checkpoints")
    if not isinstance(data, Mapping):
        raise ConversionError(f"{path}: expected a dict with 'generator' and 'kp_detector', got {type(data).__name__}")
    missing = [k for k in ("generator", "kp_detector") if k not in data]
    if missing:
        raise ConversionError(
            f"{path}: not an FOMM checkpoint; missing {missing} (it has {sorted(map(str, data))[:10]})"
        )
    out = {}
    for key in ("generator", "kp_detector"):
        state = data[key]
        if not isinstance(state, Mapping):
            raise ConversionError(f"{path}: '{key}' is not a state dict")
        out[key] = checkpoints.strip_prefix(state)
    return out


#: The preset used when no config is given.
DEFAULT_CONFIG = "vox-256"


def build_torch_modules(checkpoint: str | os.PathLike[str], config: Any = None) -> tuple[Any, Any, dict[str, Any]]:
    """``(kp_detector, generator, config)`` torch modules (eval mode) with the checkpoint loaded.

    ``config`` None means :data:`DEFAULT_CONFIG`, and a checkpoint that does not fit says so.
    """
    from facelib.models.convert import fomm_torch

    if config is None:
        described = f"the {DEFAULT_CONFIG} preset, assumed because no config was given"
    elif isinstance(config, str | os.PathLike):
        described = f"config {os.fspath(config)!r}"
    else:
        described = "the given config"
    cfg = load_config(DEFAULT_CONFIG if config is None else config)
    states = load_checkpoint(checkpoint)
    try:
        kp, gen = fomm_torch.build_modules(cfg["model_params"])
    except (TypeError, ValueError) as exc:
        raise InputError(f"config does not describe an FOMM model: {exc}") from exc
    for module, key in ((kp, "kp_detector"), (gen, "generator")):
        try:
            fomm_torch.load_state(module, states[key], key)
        except (ValueError, RuntimeError) as exc:
            raise ConversionError(
                f"{Path(checkpoint).name} does not fit {described}: {str(exc).splitlines()[0]}; pass the config "
                f"it was trained with (--config {' / '.join(PRESETS)} or the upstream YAML file)"
            ) from exc
    return kp, gen, cfg


def _export(module: Any, args: tuple[Any, ...], path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    import warnings

    import onnx
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            os.fspath(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
        results = module(*args)
    results = results if isinstance(results, tuple) else (results,)
    model = onnx.load(os.fspath(path))
    model.ir_version = 10
    # The tracer names some output dims oddly; declare them: dynamic batch, then fixed sizes.
    for value, result, name in zip(model.graph.output, results, outputs):
        dims = value.type.tensor_type.shape.dim
        for k, size in enumerate(result.shape):
            dims[k].Clear()
            if k == 0:
                dims[k].dim_param = axes[name][0]
            else:
                dims[k].dim_value = int(size)
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))


@writes_whole_package
def build_package(
    sources: Mapping[str, Path],
    output_dir: Path,
    *,
    progress: bool = False,
    config: Any = None,
    align_corners: bool = False,
    name: str | None = None,
    **options: Any,
) -> ModelPackage:
    """Convert an FOMM checkpoint into a model package at ``output_dir``.

    Parameters
    ----------
    sources:
        ``{"checkpoint": path to the .pth.tar}``.
    config:
        Built-in preset name (``"vox-256"``, ``"taichi-256"``), a path to an upstream YAML
        config, or an equivalent mapping; None (default) assumes ``"vox-256"`` and says so
        when the checkpoint does not fit it.
    align_corners:
        ``grid_sample`` corner convention baked into the generator.  False (default) equals
        upstream run with PyTorch >= 1.3; True equals the PyTorch 1.0 the models were trained
        with (see docs/motion-transfer.md).
    name:
        Package name for the card (default ``fomm-<config name>``).
    """
    if options:
        raise InputError(f"unknown FOMM converter options {sorted(options)}")
    if "checkpoint" not in sources:
        raise InputError("the FOMM converter needs sources={'checkpoint': path to the .pth.tar}")
    require("torch", "convert", "Converting FOMM checkpoints")
    import torch

    from facelib._progress import progress as progress_bar
    from facelib.models.convert import fomm_torch

    checkpoint = Path(sources["checkpoint"])
    kp, gen, cfg = build_torch_modules(checkpoint, config)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    frame = cfg["dataset_params"]["frame_shape"]
    height, width = int(frame[0]), int(frame[1])
    params = cfg["model_params"]
    num_kp = int(params["common_params"]["num_kp"])
    channels = int(params["common_params"].get("num_channels", 3))

    image = torch.rand(2, channels, height, width)
    encoder = fomm_torch.SourceEncoder(gen).eval()
    frame_gen = fomm_torch.FrameGenerator(gen, align_corners).eval()
    with torch.no_grad():
        value, jac = kp(image[:1])
        feats, small = encoder(image[:1])
    kp_driving = (value.expand(2, -1, -1) + 0.01, jac.expand(2, -1, -1, -1).contiguous())

    steps = [
        (
            "kp_detector",
            kp,
            (image,),
            ["image"],
            ["value", "jacobian"],
            {"image": {0: "N"}, "value": {0: "N"}, "jacobian": {0: "N"}},
        ),
        (
            "source_encoder",
            encoder,
            (image[:1],),
            ["source"],
            ["source_features", "source_small"],
            {"source": {0: "S"}, "source_features": {0: "S"}, "source_small": {0: "S"}},
        ),
        (
            "generator",
            frame_gen,
            (feats, small, value, jac, *kp_driving),
            [
                "source_features",
                "source_small",
                "kp_source_value",
                "kp_source_jacobian",
                "kp_driving_value",
                "kp_driving_jacobian",
            ],
            ["prediction"],
            {
                "source_features": {0: "S"},
                "source_small": {0: "S"},
                "kp_source_value": {0: "S"},
                "kp_source_jacobian": {0: "S"},
                "kp_driving_value": {0: "N"},
                "kp_driving_jacobian": {0: "N"},
                "prediction": {0: "N"},
            },
        ),
    ]
    files: dict[str, ModelFile] = {}
    for role, module, args, ins, outs, axes in progress_bar(steps, total=len(steps), desc="export", enabled=progress):
        path = output_dir / f"{role}.onnx"
        try:
            _export(module, args, path, ins, outs, axes)
        except Exception as exc:
            raise ConversionError(f"exporting the FOMM {role} to ONNX failed: {exc}") from exc
        in_specs, out_specs = read_onnx_specs(path)
        shapes = {}
        for spec in in_specs:  # batch ranges for compiling backends (TensorRT profiles, ATC, ...)
            rest = [int(d) for d in spec.shape[1:] if isinstance(d, int)]
            opt = 1 if spec.shape[0] == "S" else BATCH_OPT
            lo, mid, hi = ([b, *rest] for b in (1, opt, BATCH_MAX))
            shapes[spec.name] = ShapeRange(cast(Any, lo), cast(Any, mid), cast(Any, hi))
        files[role] = ModelFile(
            path=path.name, inputs=in_specs, outputs=out_specs, sha256=sha256_file(path), shapes=shapes
        )

    norm = cfg["animate_params"]["normalization_params"]
    card = ModelCard(
        name=name
        or (_config_name(config) if _config_name(config).startswith("fomm") else f"fomm-{_config_name(config)}"),
        task="motion_transfer",
        variant=_config_name(config),
        licence="see upstream: github.com/AliaksandrSiarohin/first-order-model (weights: their licence)",
        source={
            "checkpoint": checkpoint.name,
            "sha256": sha256_file(checkpoint),
            "converter": "facelib.models.convert.fomm",
            "facelib_version": __version__,
            "upstream": "https://github.com/AliaksandrSiarohin/first-order-model",
            "options": {
                "config": str(config) if not isinstance(config, Mapping) else "mapping",
                "align_corners": bool(align_corners),
            },
        },
        files=files,
        preprocessing={
            "size": [height, width],
            "colour_order": "RGB",
            "layout": "NCHW",
            "range": [0.0, 1.0],
            "dtype": "float32",
        },
        outputs={
            "prediction": "float32 (N, 3, H, W) RGB in [0, 1]",
            "keypoints": "value (N, K, 2) x, y in [-1, 1], corner pixel centres at -1/1; jacobian (N, K, 2, 2)",
        },
        metadata={
            "config": cfg,
            "num_kp": num_kp,
            "align_corners": bool(align_corners),
            "opset": OPSET,
            "normalization_params": {
                "adapt_movement_scale": bool(norm.get("adapt_movement_scale", False)),
                "use_relative_movement": bool(norm.get("use_relative_movement", True)),
                "use_relative_jacobian": bool(norm.get("use_relative_jacobian", True)),
            },
        },
    )
    card.write(output_dir)
    return ModelPackage.load(output_dir).check()
