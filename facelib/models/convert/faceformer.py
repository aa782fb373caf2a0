"""Convert released FaceFormer checkpoints (``vocaset.pth`` / ``biwi.pth``) into a facelib package.

The checkpoint is a plain ``state_dict`` of the whole model, fine-tuned wav2vec2 included.  Every
size is read from the tensors: wav2vec2 width (``feature_projection.projection``), depth
(``encoder.layers.N``), FFN width, CNN channels and kernels, positional-conv kernel and groups,
``feature_dim`` (``audio_feature_map``), vertex count (``vertice_map_r``) and number of training
subjects (``obj_vector``).  The one size a state dict cannot show, the number of wav2vec2
attention heads, defaults to ``width // 64`` (12 for base, 16 for large) and can be given.

The package holds:

* ``audio_encoder.onnx``: ``input_values`` (1, N) normalised 16 kHz audio and ``positions`` (F,)
  fractional CNN-frame positions of the dataset hook (vocaset 50->30 fps linear interpolation,
  BIWI identity) -> ``features`` (1, F, D) = ``audio_feature_map(wav2vec2(...))``.
* ``decoder_step.onnx``: one autoregressive step with a key/value cache: ``token`` (1, D)
  (embedding + periodic PE), ``past_key``/``past_value`` (P, D), ``bias`` (H, P+1) temporal
  bias row, ``memory`` (A, D) the aligned audio features, ``style`` (1, D) -> ``offset``
  (1, V*3), ``next_token`` (1, D) (``vertice_map(offset) + style``), ``key``/``value`` (1, D).
* ``audio_encoder_stream.onnx`` (wav2vec2 with a GroupNorm first conv layer, i.e. base): the same
  encoder, except that the first conv layer's GroupNorm takes its per-channel statistics as inputs
  ``conv_mean``/``conv_var`` (C,) (variance with the norm's epsilon added) instead of computing them
  over the input, so a stream can normalise with the running statistics of all audio so far;
  ``audio_conv0.npz`` (``weight`` (C, 1, K), ``bias`` (C,), ``stride``): that conv layer, which
  the stream runs in numpy to keep those statistics.  The offline path never uses them.  Both
  encoder graphs then read their weights from one file, ``audio_encoder.weights`` (ONNX external
  data, :mod:`facelib.models.convert.shared_weights`), so the streaming graph adds almost nothing
  to the package.
* ``audio_cnn_stream.onnx`` (``input_values``, ``conv_mean``, ``conv_var`` -> ``cnn`` (1, Tc, C),
  the conv stack's output) and ``audio_context_stream.onnx`` (``cnn``, ``positions`` ->
  ``features``): that streaming encoder in two halves over the same weights file, so a stream can
  keep the CNN features of audio it has already encoded (the conv stack is local: CNN frame j
  sees samples 320 j .. 320 j + 399) and run the conv stack on new audio only.
* ``style.npy`` (D, S): the ``obj_vector`` weight; ``template.npy`` (V, 3) or ``templates.npz``.

torch is imported lazily (the ``convert`` extra); running the package needs only onnxruntime.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.backends.base import ShapeRange
from facelib.errors import ConversionError, InputError, require
from facelib.models import checkpoints
from facelib.models.card import ModelCard, ModelFile
from facelib.models.convert._output import writes_whole_package
from facelib.models.convert.shared_weights import share_weights
from facelib.models.package import ModelPackage, read_onnx_specs, sha256_file
from facelib.processing import faceformer as ff

DATASETS: dict[str, dict[str, Any]] = {
    "vocaset": {
        "fps": 30.0,
        "period": 30,
        "subjects": [
            "FaceTalk_170728_03272_TA",
            "FaceTalk_170904_00128_TA",
            "FaceTalk_170725_00137_TA",
            "FaceTalk_170915_00223_TA",
            "FaceTalk_170811_03274_TA",
            "FaceTalk_170913_03279_TA",
            "FaceTalk_170904_03276_TA",
            "FaceTalk_170912_03278_TA",
        ],
    },
    "biwi": {"fps": 25.0, "period": 25, "subjects": ["F2", "F3", "F4", "M3", "M4", "M5"]},
}
#: The one file holding the weights both encoder graphs read (ONNX external data).
ENCODER_WEIGHTS = "audio_encoder.weights"
DECODER_HEADS = 4  # nhead=4 in upstream's nn.TransformerDecoderLayer
#: Input ranges written to the card for compiling backends (TensorRT profiles, ATC ranges, ...):
#: the task's defaults must fit them (whole-utterance encoding up to 30 s, a decoder cache of
#: 600 frames plus the masked slot the task always feeds, so no input is ever empty).
MAX_AUDIO_SECONDS = 30.0
OPT_AUDIO_SECONDS = 5.0
MAX_CONTEXT = 600
_ENC = "audio_encoder."


# --- reading the checkpoint -------------------------------------------------------------------


def load_state_dict(path: Path) -> dict[str, Any]:
    """Load a checkpoint weights-only (no pickle code execution) and unwrap common wrappers."""
    state = checkpoints.load_state_dict(path, "Converting FaceFormer checkpoints", wrappers=("state_dict", "model"))
    if "vertice_map_r.weight" not in state or _ENC + "feature_projection.projection.weight" not in state:
        raise ConversionError(f"{path} is not a FaceFormer checkpoint (no vertice_map_r / audio_encoder keys)")
    return state


def pos_conv_weight(state: Mapping[str, Any]) -> Any:
    """The wav2vec2 positional-conv weight from weight-norm parts (legacy or parametrisation names)."""
    base = _ENC + "encoder.pos_conv_embed.conv."
    pairs = [("weight_g", "weight_v"), ("parametrizations.weight.original0", "parametrizations.weight.original1")]
    for g_name, v_name in pairs:
        if base + g_name in state:
            g, v = state[base + g_name].double(), state[base + v_name].double()
            # weight_norm(dim=2): per kernel tap k, w[:, :, k] = g[k] * v[:, :, k] / ||v[:, :, k]||
            norm = v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
            return (g * v / norm).float()
    if base + "weight" in state:
        return state[base + "weight"].float()
    raise ConversionError("checkpoint has no wav2vec2 positional conv weight (weight_g/weight_v or parametrizations)")


def read_sizes(state: Mapping[str, Any], encoder_heads: int | None = None) -> dict[str, Any]:
    """Every architecture size, read from tensor shapes."""
    conv_ids = sorted(
        {
            int(m.group(1))
            for k in state
            if (m := re.match(r"audio_encoder\.feature_extractor\.conv_layers\.(\d+)\.", k))
        }
    )
    layer_ids = sorted(
        {int(m.group(1)) for k in state if (m := re.match(r"audio_encoder\.encoder\.layers\.(\d+)\.", k))}
    )
    if not conv_ids or not layer_ids:
        raise ConversionError("checkpoint has no wav2vec2 conv layers or transformer layers")
    hidden = int(state[_ENC + "feature_projection.projection.weight"].shape[0])
    if encoder_heads is None:
        if hidden % 64:
            raise ConversionError(
                f"wav2vec2 width {hidden} is not a multiple of 64, so the number of attention heads "
                "cannot be inferred; pass encoder_heads=N (--encoder-heads N)"
            )
        encoder_heads = hidden // 64
    if hidden % encoder_heads:
        raise ConversionError(f"wav2vec2 width {hidden} is not divisible by encoder_heads={encoder_heads}")
    pos_w = pos_conv_weight(state)
    kernels = [int(state[f"{_ENC}feature_extractor.conv_layers.{i}.conv.weight"].shape[2]) for i in conv_ids]
    conv_norm = "layer" if f"{_ENC}feature_extractor.conv_layers.1.layer_norm.weight" in state else "group"
    d = int(state["audio_feature_map.weight"].shape[0])
    return {
        "hidden": hidden,
        "layers": len(layer_ids),
        "encoder_heads": int(encoder_heads),
        "ffn": int(state[_ENC + "encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0]),
        "conv_channels": int(state[_ENC + "feature_extractor.conv_layers.0.conv.weight"].shape[0]),
        "conv_kernels": kernels,
        "conv_strides": [5 if i == 0 else 2 for i in range(len(kernels))],
        "conv_bias": f"{_ENC}feature_extractor.conv_layers.0.conv.bias" in state,
        "conv_norm": conv_norm,
        "pos_conv_kernel": int(pos_w.shape[2]),
        "pos_conv_groups": hidden // int(pos_w.shape[1]),
        "feature_dim": d,
        "decoder_heads": DECODER_HEADS,
        "decoder_ffn": int(state["transformer_decoder.layers.0.linear1.weight"].shape[0]),
        "vertex_dim": int(state["vertice_map_r.weight"].shape[0]),
        "num_subjects": int(state["obj_vector.weight"].shape[1]),
        "ppe_length": int(state["PPE.pe"].shape[1]) if "PPE.pe" in state else None,
    }


# --- torch modules (built lazily so importing this module does not need torch) ------------------


def _modules() -> Any:
    torch: Any = require("torch", "convert", "Converting FaceFormer checkpoints")
    nn = torch.nn
    F = torch.nn.functional

    class AudioEncoder(nn.Module):  # type: ignore[name-defined]
        """wav2vec2 (post-LN, group-norm CNN) with the dataset hook and ``audio_feature_map``."""

        def __init__(self, state: Mapping[str, Any], sizes: Mapping[str, Any]) -> None:
            super().__init__()
            self.sizes = dict(sizes)
            self.p = nn.ParameterDict()
            for key, value in state.items():
                if key.startswith(_ENC) and "pos_conv_embed" not in key and "masked_spec_embed" not in key:
                    self.p[key[len(_ENC) :].replace(".", "__")] = nn.Parameter(value.float(), requires_grad=False)
            self.p["pos_w"] = nn.Parameter(pos_conv_weight(state), requires_grad=False)
            self.p["pos_b"] = nn.Parameter(
                state[_ENC + "encoder.pos_conv_embed.conv.bias"].float(), requires_grad=False
            )
            self.p["map_w"] = nn.Parameter(state["audio_feature_map.weight"].float(), requires_grad=False)
            self.p["map_b"] = nn.Parameter(state["audio_feature_map.bias"].float(), requires_grad=False)

        def w(self, name: str) -> Any:
            return self.p[name.replace(".", "__")]

        def forward(
            self, input_values: Any, positions: Any, conv_mean: Any | None = None, conv_var: Any | None = None
        ) -> Any:
            return self.context(self.cnn(input_values, conv_mean, conv_var), positions)

        def cnn(self, input_values: Any, conv_mean: Any | None = None, conv_var: Any | None = None) -> Any:
            """(1, N) audio -> (1, Tc, C) CNN features (the conv stack, before the dataset hook)."""
            s = self.sizes
            x = input_values[:, None, :]
            for i, stride in enumerate(s["conv_strides"]):
                pre = f"feature_extractor.conv_layers.{i}."
                bias = self.w(pre + "conv.bias") if s["conv_bias"] else None
                x = F.conv1d(x, self.w(pre + "conv.weight"), bias, stride=stride)
                if s["conv_norm"] == "layer":
                    x = F.layer_norm(
                        x.transpose(1, 2),
                        (s["conv_channels"],),
                        self.w(pre + "layer_norm.weight"),
                        self.w(pre + "layer_norm.bias"),
                    ).transpose(1, 2)
                elif i == 0 and conv_mean is not None:  # streaming: statistics given (eps in conv_var)
                    scale = self.w(pre + "layer_norm.weight") * torch.rsqrt(conv_var)
                    x = (x - conv_mean[None, :, None]) * scale[None, :, None] + self.w(pre + "layer_norm.bias")[
                        None, :, None
                    ]
                elif i == 0:  # GroupNorm(C, C): each channel normalised over time (one fused op)
                    x = F.group_norm(
                        x, s["conv_channels"], self.w(pre + "layer_norm.weight"), self.w(pre + "layer_norm.bias"), 1e-5
                    )
                x = F.gelu(x)
            return x.transpose(1, 2)  # (1, Tc, C)

        def context(self, feats: Any, positions: Any) -> Any:
            """(1, Tc, C) CNN features and (F,) hook positions -> (1, F, D) features."""
            s = self.sizes
            # dataset hook: linear interpolation at fractional positions (identity for BIWI)
            last = feats.shape[1] - 1
            lo = torch.clamp(torch.floor(positions), min=0).long()
            lo = torch.minimum(lo, torch.full_like(lo, 0) + last)
            hi = torch.minimum(lo + 1, torch.full_like(lo, 0) + last)
            frac = (positions - lo.float())[None, :, None]
            h = feats[:, lo] * (1.0 - frac) + feats[:, hi] * frac
            # feature projection
            h = F.layer_norm(
                h,
                (s["conv_channels"],),
                self.w("feature_projection.layer_norm.weight"),
                self.w("feature_projection.layer_norm.bias"),
            )
            h = F.linear(
                h, self.w("feature_projection.projection.weight"), self.w("feature_projection.projection.bias")
            )
            # positional conv (SamePad drops the last output for even kernels)
            k = s["pos_conv_kernel"]
            pos = F.conv1d(
                h.transpose(1, 2), self.p["pos_w"], self.p["pos_b"], padding=k // 2, groups=s["pos_conv_groups"]
            )
            if k % 2 == 0:
                pos = pos[:, :, :-1]
            h = h + F.gelu(pos).transpose(1, 2)
            h = F.layer_norm(h, (s["hidden"],), self.w("encoder.layer_norm.weight"), self.w("encoder.layer_norm.bias"))
            heads = s["encoder_heads"]
            hd = s["hidden"] // heads
            for i in range(s["layers"]):
                pre = f"encoder.layers.{i}."
                q = F.linear(h, self.w(pre + "attention.q_proj.weight"), self.w(pre + "attention.q_proj.bias")) * (
                    hd**-0.5
                )
                kk = F.linear(h, self.w(pre + "attention.k_proj.weight"), self.w(pre + "attention.k_proj.bias"))
                v = F.linear(h, self.w(pre + "attention.v_proj.weight"), self.w(pre + "attention.v_proj.bias"))
                q = q.view(1, -1, heads, hd).transpose(1, 2)
                kk = kk.view(1, -1, heads, hd).transpose(1, 2)
                v = v.view(1, -1, heads, hd).transpose(1, 2)
                a = torch.softmax(q @ kk.transpose(2, 3), dim=-1) @ v
                a = a.transpose(1, 2).reshape(1, -1, s["hidden"])
                a = F.linear(a, self.w(pre + "attention.out_proj.weight"), self.w(pre + "attention.out_proj.bias"))
                h = F.layer_norm(
                    h + a, (s["hidden"],), self.w(pre + "layer_norm.weight"), self.w(pre + "layer_norm.bias")
                )
                f = F.gelu(
                    F.linear(
                        h,
                        self.w(pre + "feed_forward.intermediate_dense.weight"),
                        self.w(pre + "feed_forward.intermediate_dense.bias"),
                    )
                )
                f = F.linear(
                    f, self.w(pre + "feed_forward.output_dense.weight"), self.w(pre + "feed_forward.output_dense.bias")
                )
                h = F.layer_norm(
                    h + f,
                    (s["hidden"],),
                    self.w(pre + "final_layer_norm.weight"),
                    self.w(pre + "final_layer_norm.bias"),
                )
            return F.linear(h, self.p["map_w"], self.p["map_b"])

    class EncoderPart(nn.Module):  # type: ignore[name-defined]
        """One half of :class:`AudioEncoder` as its own graph: ``"cnn"`` (audio and GroupNorm
        statistics -> CNN features) or ``"context"`` (CNN features and positions -> features)."""

        def __init__(self, encoder: Any, part: str) -> None:
            super().__init__()
            self.encoder = encoder
            self.part = part

        def forward(self, *args: Any) -> Any:
            return getattr(self.encoder, self.part)(*args)

    class DecoderStep(nn.Module):  # type: ignore[name-defined]
        """One post-LN transformer-decoder step for the newest position, with a key/value cache."""

        def __init__(self, state: Mapping[str, Any], sizes: Mapping[str, Any]) -> None:
            super().__init__()
            self.d = sizes["feature_dim"]
            self.heads = sizes["decoder_heads"]
            pre = "transformer_decoder.layers.0."
            self.p = nn.ParameterDict()
            for key, value in state.items():
                if key.startswith(pre):
                    self.p[key[len(pre) :].replace(".", "__")] = nn.Parameter(value.float(), requires_grad=False)
            for name in ("vertice_map.weight", "vertice_map.bias", "vertice_map_r.weight", "vertice_map_r.bias"):
                self.p[name.replace(".", "__")] = nn.Parameter(state[name].float(), requires_grad=False)

        def w(self, name: str) -> Any:
            return self.p[name.replace(".", "__")]

        def _attend(self, q: Any, k: Any, v: Any, bias: Any | None) -> Any:
            hd = self.d // self.heads
            q = q.view(1, self.heads, hd).transpose(0, 1) * (hd**-0.5)  # (H, 1, hd)
            k = k.view(-1, self.heads, hd).transpose(0, 1)  # (H, S, hd)
            v = v.view(-1, self.heads, hd).transpose(0, 1)
            logits = q @ k.transpose(1, 2)  # (H, 1, S)
            if bias is not None:
                logits = logits + bias[:, None, :]
            return (torch.softmax(logits, dim=-1) @ v).transpose(0, 1).reshape(1, self.d)

        def forward(self, token: Any, past_key: Any, past_value: Any, bias: Any, memory: Any, style: Any) -> Any:
            d = self.d
            w_in, b_in = self.w("self_attn.in_proj_weight"), self.w("self_attn.in_proj_bias")
            q = F.linear(token, w_in[:d], b_in[:d])
            k_new = F.linear(token, w_in[d : 2 * d], b_in[d : 2 * d])
            v_new = F.linear(token, w_in[2 * d :], b_in[2 * d :])
            keys = torch.cat([past_key, k_new], dim=0)
            values = torch.cat([past_value, v_new], dim=0)
            a = F.linear(
                self._attend(q, keys, values, bias),
                self.w("self_attn.out_proj.weight"),
                self.w("self_attn.out_proj.bias"),
            )
            x = F.layer_norm(token + a, (d,), self.w("norm1.weight"), self.w("norm1.bias"))
            w_m, b_m = self.w("multihead_attn.in_proj_weight"), self.w("multihead_attn.in_proj_bias")
            qm = F.linear(x, w_m[:d], b_m[:d])
            km = F.linear(memory, w_m[d : 2 * d], b_m[d : 2 * d])
            vm = F.linear(memory, w_m[2 * d :], b_m[2 * d :])
            c = F.linear(
                self._attend(qm, km, vm, None),
                self.w("multihead_attn.out_proj.weight"),
                self.w("multihead_attn.out_proj.bias"),
            )
            x = F.layer_norm(x + c, (d,), self.w("norm2.weight"), self.w("norm2.bias"))
            f = F.linear(
                F.relu(F.linear(x, self.w("linear1.weight"), self.w("linear1.bias"))),
                self.w("linear2.weight"),
                self.w("linear2.bias"),
            )
            x = F.layer_norm(x + f, (d,), self.w("norm3.weight"), self.w("norm3.bias"))
            offset = F.linear(x, self.w("vertice_map_r.weight"), self.w("vertice_map_r.bias"))
            next_token = F.linear(offset, self.w("vertice_map.weight"), self.w("vertice_map.bias")) + style
            return offset, next_token, k_new, v_new

    return torch, AudioEncoder, EncoderPart, DecoderStep


# --- export ---------------------------------------------------------------------------------


def _export(
    torch: Any,
    module: Any,
    args: tuple[Any, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    axes: dict[str, dict[int, str]],
) -> None:
    import warnings

    import onnx

    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer notes
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    model = onnx.load(str(path))
    model.ir_version = 10
    onnx.save(model, str(path))


def _shape_ranges(
    dataset: str, d: int, heads: int, audio_per_frame: int, channels: int
) -> dict[str, dict[str, ShapeRange]]:
    """Min/opt/max of every dynamic input of the two ONNX files (see :data:`MAX_AUDIO_SECONDS`).

    ``input_values`` (1, samples): from one wav2vec2 receptive field (400 samples) to
    ``MAX_AUDIO_SECONDS``; ``positions`` (frames,): the hooked frames of those; ``past_key`` /
    ``past_value`` (P, D): 1 (the masked slot) to ``MAX_CONTEXT + 1``; ``bias`` (H, P + 1);
    ``memory`` (audio_per_frame, D); the streaming encoder's ``conv_mean``/``conv_var`` (C,).
    """

    def hooked(samples: int) -> int:
        return max(1, ff.hooked_length(ff.cnn_frames(samples), dataset))

    top, opt = int(MAX_AUDIO_SECONDS * ff.SAMPLE_RATE), int(OPT_AUDIO_SECONDS * ff.SAMPLE_RATE)
    ctx = MAX_CONTEXT // 2
    past = ShapeRange((1, d), (ctx + 1, d), (MAX_CONTEXT + 1, d))
    audio = {
        "input_values": ShapeRange((1, 400), (1, opt), (1, top)),
        "positions": ShapeRange((1,), (hooked(opt),), (hooked(top),)),
    }
    stats = ShapeRange((channels,), (channels,), (channels,))
    return {
        "audio_encoder": audio,
        "audio_encoder_stream": {**audio, "conv_mean": stats, "conv_var": stats},
        "audio_cnn_stream": {"input_values": audio["input_values"], "conv_mean": stats, "conv_var": stats},
        "audio_context_stream": {
            "cnn": ShapeRange((1, 1, channels), (1, ff.cnn_frames(opt), channels), (1, ff.cnn_frames(top), channels)),
            "positions": audio["positions"],
        },
        "decoder_step": {
            "past_key": past,
            "past_value": past,
            "bias": ShapeRange((heads, 2), (heads, ctx + 2), (heads, MAX_CONTEXT + 2)),
            "memory": ShapeRange((audio_per_frame, d), (audio_per_frame, d), (audio_per_frame, d)),
        },
    }


def read_template(path: Path, subject: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A template's vertices (V, 3) float32 and faces (F, 3) int32 (empty for .npy/.pkl).

    Reads .ply/.obj/.npy meshes or ``templates.pkl[subject]`` (upstream's pickle, latin1).
    """
    path = Path(path)
    if path.suffix == ".pkl":
        with open(path, "rb") as fh:
            templates = pickle.load(fh, encoding="latin1")
        if subject is None or subject not in templates:
            raise InputError(f"{path} has templates for {sorted(templates)}; choose one with template_subject=")
        return np.asarray(templates[subject], dtype=np.float32).reshape(-1, 3), np.zeros((0, 3), np.int32)
    from facelib.io.mesh import read_mesh

    mesh = read_mesh(path)
    return mesh.vertices, mesh.faces


@writes_whole_package
def build_package(
    sources: Mapping[str, Path],
    output_dir: Path,
    *,
    progress: bool = False,
    dataset: str = "vocaset",
    subjects: Sequence[str] | None = None,
    encoder_heads: int | None = None,
    template_subject: str | None = None,
    name: str | None = None,
    motion: str = "vertices",
    coefficient_names: Sequence[str] | None = None,
    fps: float | None = None,
    **options: Any,
) -> ModelPackage:
    """Convert a FaceFormer checkpoint into a package (see the module docstring).

    Parameters
    ----------
    sources:
        ``{"checkpoint": vocaset.pth | biwi.pth}`` and optionally ``"template"``: a .ply/.obj/.npy
        mesh or upstream ``templates.pkl`` (then ``template_subject`` picks the entry).
    dataset:
        ``"vocaset"`` (30 fps, period 30, 50->30 interpolation) or ``"biwi"`` (25 fps, period 25,
        two audio frames per video frame).
    subjects:
        Names of the training subjects in one-hot order (default: upstream's lists).
    encoder_heads:
        wav2vec2 attention heads (default ``width // 64``).
    motion:
        ``"vertices"`` (offsets added to a template) or ``"coefficients"``: the model's output
        is a motion vector (e.g. 50 FLAME expression + 1 jaw) named by ``coefficient_names``,
        turned into vertices at run time by a user-supplied linear basis.
    fps:
        Output frame rate when it differs from the dataset's (coefficient models, e.g. 25).
    """
    if options:
        raise InputError(f"unknown FaceFormer conversion options: {sorted(options)}")
    dataset = dataset.lower()
    if dataset not in DATASETS:
        raise InputError(f"dataset must be 'vocaset' or 'biwi', got {dataset!r}")
    if "checkpoint" not in sources:
        raise InputError("sources needs a 'checkpoint' (.pth)")
    torch, AudioEncoder, EncoderPart, DecoderStep = _modules()
    ckpt = Path(sources["checkpoint"])
    state = load_state_dict(ckpt)
    sizes = read_sizes(state, encoder_heads)
    facts = DATASETS[dataset]
    period = int(facts["period"])
    if sizes["ppe_length"] is not None and sizes["ppe_length"] != period * (600 // period + 1):
        raise ConversionError(
            f"checkpoint's PPE buffer has {sizes['ppe_length']} rows, which does not fit period {period} of "
            f"dataset {dataset!r}; is this a {'biwi' if dataset == 'vocaset' else 'vocaset'} checkpoint?"
        )
    d, v3 = sizes["feature_dim"], sizes["vertex_dim"]
    if "PPE.pe" in state:
        ppe = state["PPE.pe"][0, :period].numpy()
        if np.abs(ppe - ff.periodic_encoding(period, d, period)).max() > 1e-5:
            raise ConversionError("checkpoint PPE buffer does not match the periodic encoding formula")
    names = list(subjects) if subjects else list(facts["subjects"])
    if len(names) != sizes["num_subjects"]:
        if subjects:
            raise InputError(
                f"the checkpoint has {sizes['num_subjects']} training subjects but {len(names)} names were given"
            )
        names = [f"subject_{i}" for i in range(sizes["num_subjects"])]
    if motion not in ("vertices", "coefficients"):
        raise InputError(f"motion must be 'vertices' or 'coefficients', got {motion!r}")
    if motion == "coefficients":
        coeff_names = list(coefficient_names) if coefficient_names else [f"c{i}" for i in range(v3)]
        if len(coeff_names) != v3:
            raise InputError(f"the checkpoint outputs {v3} coefficients but {len(coeff_names)} names were given")
        outputs: dict[str, Any] = {"kind": "coefficients", "fps": float(fps or facts["fps"]), "names": coeff_names}
    else:
        if v3 % 3:
            raise ConversionError(f"output size {v3} is not a multiple of 3; convert with motion='coefficients'")
        outputs = {
            "kind": "vertex_offsets",
            "fps": float(fps or facts["fps"]),
            "num_vertices": v3 // 3,
            "units": "template units (metres)",
        }
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    encoder = AudioEncoder(state, sizes)
    step = DecoderStep(state, sizes)
    audio = torch.zeros(1, 16000)
    positions = torch.from_numpy(ff.hook_positions(49, dataset).astype(np.float32))
    _export(
        torch,
        encoder,
        (audio, positions),
        output_dir / "audio_encoder.onnx",
        ["input_values", "positions"],
        ["features"],
        {"input_values": {1: "samples"}, "positions": {0: "frames"}, "features": {1: "frames"}},
    )
    stream_roles: tuple[str, ...] = ()
    if sizes["conv_norm"] == "group":
        # streaming variant: the first conv layer's GroupNorm takes its per-channel statistics as
        # inputs (the running statistics of a stream) instead of computing them over the window;
        # the offline graph above stays upstream's computation
        c = sizes["conv_channels"]
        _export(
            torch,
            encoder,
            (audio, positions, torch.zeros(c), torch.ones(c)),
            output_dir / "audio_encoder_stream.onnx",
            ["input_values", "positions", "conv_mean", "conv_var"],
            ["features"],
            {"input_values": {1: "samples"}, "positions": {0: "frames"}, "features": {1: "frames"}},
        )
        pre = _ENC + "feature_extractor.conv_layers.0.conv."
        weight = state[pre + "weight"].float().numpy()
        bias = state[pre + "bias"].float().numpy() if sizes["conv_bias"] else np.zeros(len(weight), np.float32)
        np.savez(output_dir / "audio_conv0.npz", weight=weight, bias=bias, stride=np.int64(sizes["conv_strides"][0]))
        # the same streaming encoder in two halves, so a stream can keep the CNN features of audio
        # it has encoded and run the conv stack on new audio only (the conv stack is local)
        cnn_part = EncoderPart(encoder, "cnn")
        _export(
            torch,
            cnn_part,
            (audio, torch.zeros(c), torch.ones(c)),
            output_dir / "audio_cnn_stream.onnx",
            ["input_values", "conv_mean", "conv_var"],
            ["cnn"],
            {"input_values": {1: "samples"}, "cnn": {1: "cnn_frames"}},
        )
        with torch.no_grad():
            cnn_example = cnn_part(audio, torch.zeros(c), torch.ones(c))
        _export(
            torch,
            EncoderPart(encoder, "context"),
            (cnn_example, positions),
            output_dir / "audio_context_stream.onnx",
            ["cnn", "positions"],
            ["features"],
            {"cnn": {1: "cnn_frames"}, "positions": {0: "frames"}, "features": {1: "frames"}},
        )
        stream_roles = ("audio_encoder_stream", "audio_cnn_stream", "audio_context_stream")
        share_weights(
            output_dir / "audio_encoder.onnx",
            [output_dir / f"{role}.onnx" for role in stream_roles],
            ENCODER_WEIGHTS,
        )
    a = 1 if dataset == "vocaset" else 2
    h = DECODER_HEADS
    args = (
        torch.zeros(1, d),
        torch.zeros(3, d),
        torch.zeros(3, d),
        torch.zeros(h, 4),
        torch.zeros(a, d),
        torch.zeros(1, d),
    )
    _export(
        torch,
        step,
        args,
        output_dir / "decoder_step.onnx",
        ["token", "past_key", "past_value", "bias", "memory", "style"],
        ["offset", "next_token", "key", "value"],
        {"past_key": {0: "past"}, "past_value": {0: "past"}, "bias": {1: "keys"}, "memory": {0: "aligned"}},
    )
    np.save(output_dir / "style.npy", state["obj_vector.weight"].float().numpy())
    files: dict[str, ModelFile] = {}
    graphs = ("audio_encoder", "decoder_step", *stream_roles)
    for role in graphs:
        fname = f"{role}.onnx"
        ins, outs = read_onnx_specs(output_dir / fname)
        files[role] = ModelFile(path=fname, inputs=ins, outputs=outs, sha256=sha256_file(output_dir / fname))
    ranges = _shape_ranges(dataset, d, h, a, sizes["conv_channels"])
    for role in graphs:
        files[role] = attrs.evolve(files[role], shapes=ranges[role])
    if stream_roles:
        files["audio_conv0"] = ModelFile(path="audio_conv0.npz", sha256=sha256_file(output_dir / "audio_conv0.npz"))
        weights = output_dir / ENCODER_WEIGHTS
        files["audio_encoder_weights"] = ModelFile(path=ENCODER_WEIGHTS, sha256=sha256_file(weights))
    files["style"] = ModelFile(path="style.npy", sha256=sha256_file(output_dir / "style.npy"))
    template_info: dict[str, Any] = {}
    if "template" in sources and sources["template"] is not None:
        tpl, faces = read_template(Path(sources["template"]), template_subject)
        if tpl.shape != (v3 // 3, 3):
            raise InputError(f"template has {tpl.shape[0]} vertices but the checkpoint predicts {v3 // 3}")
        np.save(output_dir / "template.npy", tpl)
        files["template"] = ModelFile(path="template.npy", sha256=sha256_file(output_dir / "template.npy"))
        template_info = {"template_source": Path(sources["template"]).name}
        if "faces" in sources and sources["faces"] is not None:
            faces = read_template(Path(sources["faces"]))[1]
        if len(faces):
            np.save(output_dir / "faces.npy", faces.astype(np.int32))
            files["faces"] = ModelFile(path="faces.npy", sha256=sha256_file(output_dir / "faces.npy"))
    card = ModelCard(
        name=name or f"faceformer-{dataset}",
        task="audio2face",
        variant=dataset,
        licence="see upstream (EvelynFan/FaceFormer, MIT code; dataset licences apply to weights)",
        source={
            "converter": "facelib.models.convert.faceformer",
            "checkpoint": ckpt.name,
            "sha256": sha256_file(ckpt),
            "url": "https://github.com/EvelynFan/FaceFormer",
            "options": {
                "dataset": dataset,
                "encoder_heads": sizes["encoder_heads"],
                "template_subject": template_subject,
                "motion": motion,
            },
            **template_info,
        },
        files=files,
        preprocessing={"sample_rate": ff.SAMPLE_RATE, "normalize": True, "norm_eps": ff.NORM_EPS},
        outputs=outputs,
        metadata={
            "architecture": "faceformer",
            "dataset": dataset,
            "period": period,
            "feature_dim": d,
            "decoder_heads": h,
            "subjects": names,
            "alignment": "interpolate_50_to_30" if dataset == "vocaset" else "two_audio_per_frame",
            "audio_per_frame": a,
            "max_train_frames": 600,
            "sizes": sizes,
        },
    )
    card.write(output_dir)
    return ModelPackage.load(output_dir).check()
