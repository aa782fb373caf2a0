"""FaceFormer pre/post-processing in pure numpy: everything around the ONNX sessions.

Conventions
-----------
* Audio is mono float32 at 16 kHz, one sample per element, nominally in [-1, 1].
* "Audio frames" are wav2vec2 CNN frames at 50 Hz (stride 320 samples, receptive field 400).
* "Hooked frames" are the audio features after the dataset hook: vocaset interpolates 50 Hz to
  30 fps (one hooked frame per video frame); BIWI keeps 50 Hz minus a trailing odd frame (two
  hooked frames per 25 fps video frame).
* Offsets and vertices are float32, metres in the template's frame, shape (T, V, 3).

Every quantity the upstream model built once for 600 frames (periodic positional encoding,
biased causal mask, alignment mask) is computed here for any length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from facelib.errors import InputError

#: Sample rate every FaceFormer model expects (Hz).
SAMPLE_RATE = 16000
#: Default epsilon of the feature-extractor normalisation (current transformers releases).
#: The transformers 4.6 era (pinned by upstream FaceFormer) used 1e-5; the difference is below
#: 1e-6 relative for speech at normal levels but matters for bit-exact comparisons.
NORM_EPS = 1e-7
#: Epsilon of wav2vec2's first-conv GroupNorm (PyTorch's default, added to each channel's variance).
GROUP_NORM_EPS = 1e-5
#: wav2vec2 CNN: conv kernels and strides of the standard 7-layer feature encoder.
CNN_KERNELS = (10, 3, 3, 3, 3, 2, 2)
CNN_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def normalize_audio(audio: np.ndarray, eps: float = NORM_EPS) -> np.ndarray:
    """Standardise an utterance like the wav2vec2 feature extractor (``do_normalize``).

    Parameters
    ----------
    audio:
        (N,) float samples at 16 kHz.
    eps:
        Added to the variance before the square root (1e-7 now, 1e-5 in transformers 4.6).

    Returns
    -------
    (N,) float32: ``(x - mean) / sqrt(var + eps)`` with mean/var over the whole array.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise InputError(f"audio must be 1-D (N,) samples, got shape {x.shape}")
    if x.size == 0:
        raise InputError("audio is empty (0 samples)")
    mean = x.mean(dtype=np.float64)
    var = x.var(dtype=np.float64)
    return ((x - np.float32(mean)) / np.float32(math.sqrt(var + eps))).astype(np.float32)


def normalize_with(audio: np.ndarray, mean: float, var: float, eps: float = NORM_EPS) -> np.ndarray:
    """Standardise ``audio`` with given statistics (for blockwise runs over a long file)."""
    x = np.asarray(audio, dtype=np.float32)
    return ((x - np.float32(mean)) / np.float32(math.sqrt(var + eps))).astype(np.float32)


def cnn_frames(num_samples: int, kernels: Sequence[int] = CNN_KERNELS, strides: Sequence[int] = CNN_STRIDES) -> int:
    """Number of 50 Hz wav2vec2 frames the CNN produces from ``num_samples`` samples (>= 0)."""
    n = int(num_samples)
    for k, s in zip(kernels, strides, strict=True):
        n = (n - k) // s + 1 if n >= k else 0
    return max(n, 0)


def hooked_length(cnn_len: int, dataset: str) -> int:
    """Hooked frames for ``cnn_len`` CNN frames: vocaset ``int(T/50*30)``, BIWI ``T - T % 2``."""
    if dataset == "vocaset":
        return int(cnn_len / 50.0 * 30.0)
    if dataset == "biwi":
        return cnn_len - cnn_len % 2
    raise InputError(f"unknown FaceFormer dataset {dataset!r}; expected 'vocaset' or 'biwi'")


def video_frames(hooked_len: int, dataset: str) -> int:
    """Video frames for ``hooked_len`` hooked frames (vocaset 1:1, BIWI 2:1)."""
    return hooked_len if dataset == "vocaset" else hooked_len // 2


def hook_positions(cnn_len: int, dataset: str, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Fractional CNN-frame positions of hooked frames ``start..stop-1`` of the whole utterance.

    vocaset follows ``F.interpolate(mode="linear", align_corners=True)`` to
    ``int(T/50*30)`` frames: hooked frame i samples the CNN axis at ``i * (T-1)/(out-1)``.
    BIWI is the identity (integer positions) with the trailing odd frame dropped.

    Returns
    -------
    (stop-start,) float64 positions in CNN frames (0 = first CNN frame of the utterance).
    """
    out = hooked_length(cnn_len, dataset)
    stop = out if stop is None else min(int(stop), out)
    idx = np.arange(int(start), stop, dtype=np.float64)
    if dataset == "biwi":
        return idx
    # float32 arithmetic, as PyTorch's CPU kernel computes scale and source index
    scale = np.float32((cnn_len - 1) / (out - 1)) if out > 1 else np.float32(0.0)
    return (idx.astype(np.float32) * scale).astype(np.float64)


def nominal_positions(start: int, stop: int, dataset: str) -> np.ndarray:
    """Hooked-frame positions when the total length is unknown (streaming): 50/30 per frame.

    Differs from :func:`hook_positions` only by the ``align_corners`` rescaling, i.e. by at most
    about 2.3 CNN frames (47 ms) at the very end of an utterance.
    """
    idx = np.arange(int(start), int(stop), dtype=np.float64)
    return idx * (50.0 / 30.0) if dataset == "vocaset" else idx


def periodic_encoding(positions: np.ndarray | int, dim: int, period: int) -> np.ndarray:
    """Periodic positional encoding rows for positions (any length, no 600 cap).

    Position t uses the standard sinusoid table (base 10000; sin on even, cos on odd dims) at
    row ``t mod period``.

    Returns
    -------
    (len(positions), dim) float32.
    """
    pos = np.arange(int(positions)) if isinstance(positions, int | np.integer) else np.asarray(positions)
    phase = (pos % period).astype(np.float32)[:, None]
    div = np.exp(np.arange(0, dim, 2, dtype=np.float32) * np.float32(-math.log(10000.0) / dim))
    out = np.zeros((phase.shape[0], dim), dtype=np.float32)
    out[:, 0::2] = np.sin(phase * div)
    out[:, 1::2] = np.cos(phase * div)[:, : dim // 2]
    return out


def alibi_slopes(num_heads: int) -> np.ndarray:
    """ALiBi head slopes (geometric; 4 heads: 1/4, 1/16, 1/64, 1/256), float32 (H,)."""

    def power_of_2(n: int) -> list[float]:
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    def slopes(n: int) -> list[float]:
        if math.log2(n).is_integer():
            return power_of_2(n)
        closest = 2 ** math.floor(math.log2(n))
        return power_of_2(closest) + slopes(2 * closest)[0::2][: n - closest]

    return np.asarray(slopes(num_heads), dtype=np.float32)


def biased_causal_mask(length: int, num_heads: int, period: int) -> np.ndarray:
    """The full temporal-bias self-attention mask for ``length`` frames (any length).

    ``mask[h, i, j] = -slope_h * floor((i - j) / period)`` for ``j <= i`` and ``-inf`` above
    the diagonal.  Returns (H, L, L) float32.  O(L^2): for tests; runs use :func:`bias_row`.
    """
    i = np.arange(length)[:, None]
    j = np.arange(length)[None, :]
    dist = np.floor_divide(np.maximum(i - j, 0), period).astype(np.float32)
    bias = -alibi_slopes(num_heads)[:, None, None] * dist[None]
    return np.where((j <= i)[None], bias, np.float32(-np.inf)).astype(np.float32)


def bias_row(query: int, keys: np.ndarray, slopes: np.ndarray, period: int) -> np.ndarray:
    """Self-attention bias of one query position against key positions ``keys`` (all <= query).

    Returns (H, len(keys)) float32: ``-slope_h * floor((query - key) / period)``.
    """
    dist = np.floor_divide(query - np.asarray(keys), period).astype(np.float32)
    return (-slopes[:, None] * dist[None, :]).astype(np.float32)


def alignment_mask(num_frames: int, num_audio: int, dataset: str) -> np.ndarray:
    """Boolean memory mask (True = blocked): vocaset frame i sees audio i; BIWI 2i and 2i+1.

    Returns (num_frames, num_audio) bool.
    """
    i = np.arange(num_frames)[:, None]
    j = np.arange(num_audio)[None, :]
    if dataset == "vocaset":
        allowed = j == i
    elif dataset == "biwi":
        allowed = (j == 2 * i) | (j == 2 * i + 1)
    else:
        raise InputError(f"unknown FaceFormer dataset {dataset!r}")
    return ~allowed


def aligned_audio(frame: int, dataset: str) -> slice:
    """Hooked-frame indices video frame ``frame`` attends to (vocaset [i], BIWI [2i, 2i+1])."""
    if dataset == "vocaset":
        return slice(frame, frame + 1)
    return slice(2 * frame, 2 * frame + 2)


def style_one_hot(index: int, num_subjects: int) -> np.ndarray:
    """(num_subjects,) float32 one-hot of a training subject (the speaking style)."""
    if not 0 <= index < num_subjects:
        raise InputError(f"subject index {index} is out of range 0..{num_subjects - 1}")
    out = np.zeros(num_subjects, dtype=np.float32)
    out[index] = 1.0
    return out


def style_vector(one_hot: np.ndarray, style_weight: np.ndarray) -> np.ndarray:
    """Style embedding ``obj_vector(one_hot)``: (D, S) weight times (S,) one-hot -> (D,) float32."""
    return (style_weight.astype(np.float32) @ np.asarray(one_hot, dtype=np.float32)).astype(np.float32)


def add_template(offsets: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Vertices = offsets (T, V*3) or (T, V, 3) + template (V, 3) -> (T, V, 3) float32."""
    template = np.asarray(template, dtype=np.float32)
    off = np.asarray(offsets, dtype=np.float32).reshape(len(offsets), -1, 3)
    if off.shape[1] != template.shape[0]:
        raise InputError(f"template has {template.shape[0]} vertices but the model outputs {off.shape[1]}")
    return off + template[None]
