"""Audio2Face: speech -> 3D face animation with FaceFormer packages (any length, streaming).

Pipeline (constants from the model card):

1. audio -> mono float32 16 kHz (:mod:`facelib.io.audio`), standardised over the utterance;
2. ``audio_encoder`` session on windows of the utterance: wav2vec2 + the dataset hook
   (vocaset: 50 -> 30 fps linear interpolation, ``align_corners=True`` over the whole
   utterance; BIWI: two 50 Hz features per 25 fps frame) + ``audio_feature_map``;
3. ``decoder_step`` session once per video frame with a key/value cache: the periodic positional
   encoding and the temporal-bias row for the new frame are computed in numpy;
4. offsets + template -> vertices (T, V, 3), or motion coefficients (+ an optional linear basis).

Any length, bounded memory
--------------------------
*Encoder windows.*  wav2vec2 attends over the whole input, so cost grows with the square of its
length.  Inputs up to ``whole_seconds`` run in one window, exactly as upstream.  Longer inputs run
in windows of ``core_seconds`` whose outputs are kept, each encoded with ``context_seconds`` of
extra audio on both sides that is encoded and thrown away (seams fall in the middle of
well-contextualised audio).  The normalisation statistics are those of the whole file (a first
pass computes them blockwise) and the hook positions are those of the whole utterance, so only the
attention span (and wav2vec2's first-layer group norm) differ from a whole run.
*Decoder cache.*  The temporal bias subtracts ``slope_h * floor(distance / period)`` from the
attention logits; the cache keeps the last ``max_context`` frames (default 600, the longest
sequence upstream ever decodes), so each frame costs the same at any position.
*Streaming* (:meth:`Audio2Face.stream`) uses the same windows causally: a window is encoded as
soon as its right context has arrived; wav2vec2's first-conv GroupNorm uses the running
per-channel statistics of that layer's output over all audio so far (the package's
``audio_encoder_stream`` graph takes them as inputs), which converge to the whole utterance's,
instead of the window's own (``Windowing.stream_normalization``), and hook positions use the
nominal 50/30 ratio, because the future (the utterance's length) is unknown.  Calibration speech
(``stream(calibration=...)``) seeds those running statistics with a pseudo-count that fades as
audio arrives: the utterance's loudness, which dominates the first seconds' error, is otherwise
unknown to a stream.  With ``Windowing.cache_cnn`` the CNN features of audio already encoded
are kept and the conv stack runs on each window's new audio only (``audio_cnn_stream`` /
``audio_context_stream``).
``predict(..., causal=True)`` runs that exact computation offline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.backends.base import Session
from facelib.errors import InputError, ModelCardError
from facelib.io.audio import TARGET_RATE, audio_info, check_samples, iter_audio_blocks, load_audio
from facelib.processing import faceformer as ff
from facelib.results import Audio2FaceResult
from facelib.tasks.base import BackendSource, ModelSource, Task

AudioSource = str | os.PathLike[str] | np.ndarray
_HOP = 320  # wav2vec2 CNN stride (samples)
#: With ``Windowing.cache_cnn``, windows ending in the stream's first 5 s are still encoded whole:
#: the running statistics move fast while little audio is heard, and kept features normalised
#: with them would be off (docs/audio2face.md); these calls are no longer than a full window's.
_ENCODE_WHOLE_UNTIL = 5 * TARGET_RATE
_FIELD = 400  # wav2vec2 CNN receptive field (samples)


NORMALIZATIONS = ("window", "running", "running_groupnorm")


@attrs.frozen
class Windowing:
    """How the audio encoder splits long input (all in seconds of audio).

    ``whole_seconds``: inputs up to this long are encoded in one piece (exact upstream).
    ``core_seconds``: output span of each window.  ``left_seconds``/``right_seconds``: context
    encoded on each side and discarded.  ``first_core_seconds``: output span of the first
    window when different (streaming: a short first window gives the first frame sooner).
    """

    whole_seconds: float = 30.0
    core_seconds: float = 20.0
    left_seconds: float = 2.5
    right_seconds: float = 2.5
    first_core_seconds: float | None = None
    #: How a window is standardised when the utterance's statistics are unknown (streaming):
    #: ``"window"`` (the window's own mean/variance), ``"running"`` (mean/variance of all audio
    #: from the start of the stream to the window's last sample: causal, and stable across windows)
    #: or ``"running_groupnorm"``: as ``"running"``, and wav2vec2's first-conv GroupNorm (which
    #: otherwise normalises each channel over the window alone) uses the per-channel statistics of
    #: that conv layer's output over the same audio, which converge to the whole utterance's.  It
    #: needs the package's ``audio_encoder_stream`` graph (converted by this facelib, wav2vec2 with a
    #: GroupNorm first layer); without it the stream falls back to ``"running"``.
    stream_normalization: str = "window"
    #: Streaming with calibration speech (``Audio2Face.stream(calibration=...)``): how many seconds
    #: of heard audio the calibration's statistics weigh as (a pseudo-count: they dominate the
    #: first seconds and fade as the stream's own audio accumulates).
    prior_seconds: float = 2.0
    #: Streaming with ``"running_groupnorm"``: keep the CNN features of audio already encoded and
    #: run wav2vec2's conv stack on each window's new audio only (the package's
    #: ``audio_cnn_stream``/``audio_context_stream`` graphs).  Kept features were normalised with
    #: the running statistics of their own time, not the window's (measured in
    #: docs/audio2face.md); the conv stack's share of an encoder call is saved on the past context.
    cache_cnn: bool = False
    #: Seconds at the start of each window's output blended with the previous window's features
    #: for the same frames (computed in its right context), weights ramping linearly to the new
    #: window: smooths the seam without extra latency.  At most ``right_seconds``.
    crossfade_seconds: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.stream_normalization not in NORMALIZATIONS:
            raise InputError(f"stream_normalization must be one of {NORMALIZATIONS}, got {self.stream_normalization!r}")
        if not (np.isfinite(self.prior_seconds) and self.prior_seconds >= 0.0):
            raise InputError(f"prior_seconds must be a finite number >= 0, got {self.prior_seconds!r}")
        if not 0.0 <= self.crossfade_seconds <= self.right_seconds:
            raise InputError(
                f"crossfade_seconds must be between 0 and right_seconds ({self.right_seconds:g}), "
                f"got {self.crossfade_seconds:g}"
            )


#: Streaming defaults (measured in docs/audio2face.md, "Streaming: error vs latency"): windows
#: output 0.5 s of frames each, encoded with 2 s of past and 0.25 s of future audio (2.75 s per
#: encoder call), the first-conv GroupNorm with the running statistics of the stream; the first
#: window outputs 0.3 s, so the first frame needs about 0.6 s of audio and no frame waits more
#: than 0.8 s (core + look-ahead, rounded to whole frames, + the CNN's 25 ms receptive field).
#: The conv stack runs on each window's new audio only (``cache_cnn``); calibration speech, when
#: given, weighs as 2 s of heard audio (``prior_seconds``).
STREAM_WINDOWING = Windowing(
    whole_seconds=0.0,
    core_seconds=0.5,
    left_seconds=2.0,
    right_seconds=0.25,
    first_core_seconds=0.3,
    stream_normalization="running_groupnorm",
    cache_cnn=True,
)


class _Encoder:
    """Encodes audio fed in pieces into aligned features, window by window (bounded memory)."""

    def __init__(
        self,
        task: Audio2Face,
        session: Session,
        windowing: Windowing,
        total_samples: int | None,
        stats: tuple[float, float] | None,
        calibration: np.ndarray | None = None,
    ) -> None:
        self.task = task
        self.session = session
        self.dataset = task.dataset
        self.apf = task.audio_per_frame
        fps = task.fps
        self.total = total_samples
        self.stats = stats
        if total_samples is not None:
            self.cnn_total = ff.cnn_frames(total_samples)
            self.hooked_total = ff.hooked_length(self.cnn_total, self.dataset)
            whole = total_samples <= windowing.whole_seconds * TARGET_RATE
        else:
            self.cnn_total = self.hooked_total = -1
            whole = False
        if whole:
            self.core = self.left = self.right = self.first_core = 1 << 40
        else:
            self.core = max(1, round(windowing.core_seconds * fps)) * self.apf
            first = windowing.first_core_seconds
            self.first_core = self.core if first is None else max(1, round(first * fps)) * self.apf
            self.left = round(windowing.left_seconds * fps) * self.apf
            self.right = round(windowing.right_seconds * fps) * self.apf
        self.normalization = windowing.stream_normalization
        self.conv0: tuple[np.ndarray, np.ndarray, int] | None = None
        self.cnn_sessions: tuple[Session, Session] | None = None  # (conv stack, the rest) with cache_cnn
        self.cnn_cache = np.zeros((0, 0), np.float32)  # (frames, C) CNN features kept from the last window
        self.cnn_start = 0  # absolute CNN frame index of cnn_cache[0]
        if self.normalization == "running_groupnorm":
            if total_samples is None and "audio_encoder_stream" in task.card.files:
                with np.load(task.package.path("audio_conv0")) as z:
                    w = np.asarray(z["weight"], np.float64)
                    self.conv0 = (w.reshape(len(w), -1).T.copy(), np.asarray(z["bias"], np.float64), int(z["stride"]))
                self.session = task._session("audio_encoder_stream")
                if windowing.cache_cnn and {"audio_cnn_stream", "audio_context_stream"} <= set(task.card.files):
                    self.cnn_sessions = (task._session("audio_cnn_stream"), task._session("audio_context_stream"))
            else:
                self.normalization = "running"
        self.conv_stats = (0, np.zeros(0), np.zeros(0))  # first-conv frames counted, per-channel sum, sum of squares
        # pseudo-counts and sums of the calibration speech (weight, sum, sum of squares), added to
        # the running ones: (samples, float, float) and (conv frames, (C,), (C,))
        self.audio_prior: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.conv_prior: tuple[float, Any, Any] = (0.0, 0.0, 0.0)
        if calibration is not None and total_samples is None and windowing.prior_seconds > 0:
            self._set_prior(calibration, windowing.prior_seconds)
        self.fade = min(round(windowing.crossfade_seconds * fps) * self.apf, self.right) if not whole else 0
        self.tail = np.zeros((0, 0), np.float32)  # previous window's features past its core (for the fade)
        self.dropped = (0, 0.0, 0.0)  # count, sum, sum of squares (float64) of samples before the buffer
        ratio = 50.0 / fps / self.apf  # CNN frames per hooked frame
        self.window_samples = (int(np.ceil((self.core + self.left + self.right) * ratio)) + 2) * _HOP + _FIELD
        self.buffer = np.zeros(0, np.float32)
        self.buf_start = 0  # absolute sample index of buffer[0]
        self.next = 0  # next hooked frame to produce

    def _positions(self, start: int, stop: int) -> np.ndarray:
        if self.total is not None:
            return ff.hook_positions(self.cnn_total, self.dataset, start, stop)
        return ff.nominal_positions(start, stop, self.dataset)

    def feed(self, samples: np.ndarray, final: bool = False) -> list[np.ndarray]:
        """Add samples; return feature blocks (n, D) of every window now complete."""
        if len(samples):
            self.buffer = np.concatenate([self.buffer, samples])
        end = self.buf_start + len(self.buffer)
        if final and self.total is None:
            self.total_final = end
            self.hooked_total = ff.hooked_length(ff.cnn_frames(end), self.dataset)
        out = []
        while True:
            limit = self.hooked_total if self.hooked_total >= 0 else None
            if limit is not None and self.next >= limit:
                break
            a = self.next
            core = self.first_core if a == 0 else self.core
            b = a + core if limit is None else min(a + core, limit)
            lo = max(0, a - self.left)
            hi = b + self.right if limit is None else min(b + self.right, limit)
            pos = self._positions(lo, hi)
            need = int(np.ceil(pos[-1])) + 1 if len(pos) else 0  # CNN frames needed
            last = limit is not None and hi >= limit
            if not final:
                if last and self.total is not None and end < self.total:
                    break  # the last window takes every trailing sample (see _encode)
                if (need - 1) * _HOP + _FIELD > end:
                    break  # its right context has not arrived yet
            if lo == hi:
                break
            out.append(self._encode(lo, a, b, pos, last=last))
            self.next = b
            keep = max(0, b - self.left)  # left-context start of the next window
            if limit is not None and keep >= limit:
                continue
            first_cnn = int(np.floor(self._positions(keep, keep + 1)[0]))
            drop = min(first_cnn * _HOP, end) - self.buf_start
            if self.conv0 is not None:  # keep the samples of first-conv frames not counted yet
                drop = min(drop, self.conv_stats[0] * self.conv0[2] - self.buf_start)
            if drop > 0:
                gone = self.buffer[:drop].astype(np.float64)
                n, s1, s2 = self.dropped
                self.dropped = (n + drop, s1 + float(gone.sum()), s2 + float((gone * gone).sum()))
                self.buffer = self.buffer[drop:]
                self.buf_start += drop
        return out

    def _encode(self, lo: int, a: int, b: int, pos: np.ndarray, last: bool) -> np.ndarray:
        c0 = int(np.floor(pos[0]))
        c1 = int(np.ceil(pos[-1]))
        s0 = c0 * _HOP - self.buf_start
        # the last window takes every remaining sample: wav2vec2's first conv layer normalises
        # each channel over all of its input, trailing samples included (as upstream)
        s1 = len(self.buffer) if last else min(c1 * _HOP + _FIELD - self.buf_start, len(self.buffer))
        if not last and self.total is not None:
            # same input length for every inner window (the runtime's memory arena then reuses
            # its buffers instead of growing on slightly different shapes); the extra samples
            # only add unreferenced CNN frames at the end
            s1 = min(max(s1, max(s0, 0) + self.window_samples), len(self.buffer))
        chunk = self.buffer[max(s0, 0) : s1]
        if len(chunk) < _FIELD:
            chunk = np.pad(chunk, (0, _FIELD - len(chunk)))
        rel = (pos - c0).astype(np.float32)
        feeds = {"positions": rel}
        if self.stats is not None:
            values = ff.normalize_with(chunk, *self.stats, eps=self.task.norm_eps)
        elif self.conv0 is not None:
            # raw samples with the running first-conv statistics: the GroupNorm removes any shift
            # and scale of the input, so only its epsilon sees the input standardisation
            values = chunk
            conv_mean, conv_var = self._conv_stats(s1)
            audio_var = self._running_stats(s1)[1] + self.task.norm_eps
            feeds["conv_mean"] = conv_mean.astype(np.float32)
            feeds["conv_var"] = (conv_var + ff.GROUP_NORM_EPS * audio_var).astype(np.float32)
        elif self.normalization == "running":
            values = ff.normalize_with(chunk, *self._running_stats(s1), eps=self.task.norm_eps)
        else:
            values = ff.normalize_audio(chunk, eps=self.task.norm_eps)
        feeds["input_values"] = values[None]
        if self.cnn_sessions is not None:
            feats = self._run_cached(c0, max(s0, 0), s1, feeds)
        else:
            feats = self.session.run(feeds)["features"]
        feats = np.asarray(feats[0], dtype=np.float32)
        core = feats[a - lo : b - lo].copy()
        if len(self.tail) and self.fade:
            # cross-fade: the previous window's features for these frames (its right context)
            # blend into this window's, the new window's weight rising linearly
            n = min(len(self.tail), len(core))
            w = (np.arange(1, n + 1, dtype=np.float32) / np.float32(n + 1))[:, None]
            core[:n] = (1 - w) * self.tail[:n] + w * core[:n]
        self.tail = feats[b - lo : b - lo + self.fade]
        return core

    def _run_cached(self, c0: int, s0: int, s1: int, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The streaming encoder in two halves: the conv stack runs only on CNN frames not kept
        from the previous window (frame j needs samples 320 j .. 320 j + 399), the rest of the
        encoder on the window's frames c0.. (kept + new).  Buffer span [s0, s1) is the window's."""
        assert self.cnn_sessions is not None
        cnn_session, context_session = self.cnn_sessions
        stats = {"conv_mean": feeds["conv_mean"], "conv_var": feeds["conv_var"]}
        if s1 - s0 < _FIELD:  # a padded tail shorter than one frame: nothing to keep
            cnn = cnn_session.run({"input_values": feeds["input_values"], **stats})["cnn"][0]
            self.cnn_cache, self.cnn_start = np.zeros((0, 0), np.float32), 0
        else:
            stop = c0 + (s1 - s0 - _FIELD) // _HOP + 1  # CNN frames c0 .. stop - 1
            kept_end = self.cnn_start + len(self.cnn_cache)
            if self.buf_start + s1 < _ENCODE_WHOLE_UNTIL or not self.cnn_start <= c0 <= kept_end:
                self.cnn_cache, kept_end = np.zeros((0, 0), np.float32), c0
            parts = [self.cnn_cache[c0 - self.cnn_start : stop - self.cnn_start]] if kept_end > c0 else []
            if stop > kept_end:
                first = kept_end * _HOP - self.buf_start
                span = self.buffer[first : (stop - 1) * _HOP + _FIELD - self.buf_start]
                parts.append(cnn_session.run({"input_values": span[None], **stats})["cnn"][0])
            cnn = np.concatenate(parts) if len(parts) > 1 else parts[0]
            self.cnn_cache, self.cnn_start = cnn, c0
        return np.asarray(context_session.run({"cnn": cnn[None], "positions": feeds["positions"]})["features"])

    def _set_prior(self, calibration: np.ndarray, seconds: float) -> None:
        """Seed the running statistics with those of ``calibration`` (16 kHz speech), weighted as
        ``seconds`` of audio."""
        cal = np.asarray(calibration, dtype=np.float64).reshape(-1)
        weight = seconds * TARGET_RATE
        self.audio_prior = (weight, float(cal.mean()) * weight, float((cal * cal).mean()) * weight)
        if self.conv0 is None:
            return
        n, s1, s2 = conv_sums(cal, *self.conv0)
        frames = weight / self.conv0[2]
        self.conv_prior = (frames, s1 / n * frames, s2 / n * frames)

    def _conv_stats(self, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (mean, variance) (C,) float64 of the first conv layer's output (bias
        included, on raw samples) over every frame from the stream's start that ends before
        buffer index ``stop``; counts the frames not counted yet."""
        assert self.conv0 is not None
        weight, bias, stride = self.conv0
        kernel = len(weight)
        n, s1, s2 = self.conv_stats
        end = (self.buf_start + stop - kernel) // stride + 1  # frames wholly inside [0, stop)
        if end > n:
            first = n * stride - self.buf_start
            span = self.buffer[first : first + (end - n - 1) * stride + kernel]
            _, y1, y2 = conv_sums(span, weight, bias, stride)
            if not len(s1):
                s1, s2 = np.zeros(len(y1)), np.zeros(len(y1))
            n, s1, s2 = end, s1 + y1, s2 + y2
            self.conv_stats = (n, s1, s2)
        p0, p1, p2 = self.conv_prior
        if n + p0 == 0:  # shorter than one conv frame (a padded tail): nothing to normalise with
            return np.zeros(len(bias)), np.ones(len(bias))
        count = n + p0
        mean = (s1 + p1) / count if n else p1 / count
        square = (s2 + p2) / count if n else p2 / count
        return mean, np.maximum(square - mean * mean, 0.0)

    def _running_stats(self, stop: int) -> tuple[float, float]:
        """(mean, variance) of every sample from the stream's start to buffer index ``stop``."""
        seen = self.buffer[:stop].astype(np.float64)
        n, s1, s2 = self.dropped
        p0, p1, p2 = self.audio_prior  # calibration speech (zero without)
        count = max(n + len(seen) + p0, 1)
        mean = (s1 + float(seen.sum()) + p1) / count
        return mean, max((s2 + float((seen * seen).sum()) + p2) / count - mean * mean, 0.0)


def conv_sums(
    samples: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, block: int = 4096
) -> tuple[int, np.ndarray, np.ndarray]:
    """Frame count, per-channel sum and sum of squares (C,) float64 of a 1-channel convolution's
    output over ``samples`` (valid frames only); ``weight`` (K, C), ``bias`` (C,).  Works through
    ``block`` frames at a time (bounded memory for long calibration audio)."""
    kernel, channels = weight.shape
    x = np.asarray(samples, dtype=np.float64)
    count = (len(x) - kernel) // stride + 1 if len(x) >= kernel else 0
    s1, s2 = np.zeros(channels), np.zeros(channels)
    for f0 in range(0, count, block):
        f1 = min(f0 + block, count)
        span = x[f0 * stride : (f1 - 1) * stride + kernel]
        y = np.lib.stride_tricks.sliding_window_view(span, kernel)[::stride] @ weight + bias
        s1 += y.sum(axis=0)
        s2 += (y * y).sum(axis=0)
    return count, s1, s2


#: Attention bias of the masked cache slot: its softmax weight is exactly 0 in float32 and float16.
_MASKED = np.float32(-1e9)


class _Decoder:
    """Autoregressive decoder with a bounded key/value cache (last ``max_context`` frames).

    The cache handed to the model always starts with one masked slot (zero key and value, bias
    :data:`_MASKED`), so no input is ever empty: the first frame has no past, and compilers
    (TensorRT profiles, ATC ranges, TPU-MLIR, MagicMind) do not take zero-sized dimensions.
    The slot gets zero attention weight, so the result is that of the cache alone.
    """

    def __init__(self, task: Audio2Face, session: Session, style: np.ndarray, max_context: int | None) -> None:
        self.task = task
        self.session = session
        self.style = style[None].astype(np.float32)
        d = style.shape[0]
        self.window = max_context
        cap = 2 * (max_context or 1024) + 1
        self.keys = np.zeros((cap, d), np.float32)
        self.values = np.zeros((cap, d), np.float32)
        self.count = 0  # rows in the cache
        self.head = 1  # first valid row; row head - 1 is the masked slot
        self.position = 0  # index of the next frame
        self.token = self.style.copy()
        self.slopes = ff.alibi_slopes(task.decoder_heads)
        self.period = task.period
        self.pe = ff.periodic_encoding(self.period, d, self.period)
        self.pending = np.zeros((0, d), np.float32)  # aligned audio features not yet decoded

    def _append(self, k: np.ndarray, v: np.ndarray) -> None:
        if self.head + self.count == len(self.keys):
            if self.window is None:  # unbounded: grow
                self.keys = np.concatenate([self.keys, np.zeros_like(self.keys)])
                self.values = np.concatenate([self.values, np.zeros_like(self.values)])
            else:  # bounded: move the live rows to the front (after the masked slot)
                live = slice(self.head, self.head + self.count)
                self.keys[1 : 1 + self.count] = self.keys[live]
                self.values[1 : 1 + self.count] = self.values[live]
                self.head = 1
        self.keys[self.head + self.count] = k
        self.values[self.head + self.count] = v
        if self.window is not None and self.count == self.window:
            self.head += 1
        else:
            self.count += 1

    def step(self, memory: np.ndarray) -> np.ndarray:
        i = self.position
        key_pos = np.arange(i - self.count, i + 1)
        live = slice(self.head - 1, self.head + self.count)  # the masked slot, then the cache
        self.keys[self.head - 1] = 0.0
        self.values[self.head - 1] = 0.0
        row = ff.bias_row(i, key_pos, self.slopes, self.period)
        bias = np.concatenate([np.full((len(row), 1), _MASKED, np.float32), row], axis=1)
        out = self.session.run(
            {
                "token": self.token + self.pe[i % self.period],
                "past_key": self.keys[live],
                "past_value": self.values[live],
                "bias": bias,
                "memory": memory,
                "style": self.style,
            }
        )
        self._append(out["key"][0], out["value"][0])
        self.token = out["next_token"]
        self.position += 1
        return np.asarray(out["offset"][0], dtype=np.float32)

    def feed(self, features: np.ndarray) -> list[np.ndarray]:
        """Decode every frame whose aligned audio features are now available."""
        self.pending = np.concatenate([self.pending, features]) if len(self.pending) else features
        apf = self.task.audio_per_frame
        n = len(self.pending) // apf
        frames = [self.step(self.pending[j * apf : (j + 1) * apf]) for j in range(n)]
        self.pending = self.pending[n * apf :]
        return frames


class Audio2FaceStream:
    """Feed 16 kHz audio chunks, get animation frames as soon as they are determined.

    ``feed(chunk)`` returns a list of new frames ((V, 3) float32 vertices, or (K,) coefficients for
    a coefficient model without basis); ``close()`` returns the remaining ones.
    ``first_frame_latency`` is the compute time (s) of the ``feed`` call that produced the first
    frame, from the call's start; the audio needed before it is ``lookahead_seconds``.
    """

    def __init__(
        self,
        task: Audio2Face,
        subject: str | int | None,
        template: Any,
        windowing: Windowing,
        max_context: int | None,
        calibration: np.ndarray | None = None,
    ) -> None:
        self.task = task
        self.subject_index, self.subject = task.subject_index(subject)
        self._output = task._output_fn(template)
        self._encoder = task._encoder(windowing, None, None, calibration)
        self._decoder = task._decoder(task.style(self.subject_index), max_context)
        first = windowing.first_core_seconds
        self.lookahead_seconds = (windowing.core_seconds if first is None else first) + windowing.right_seconds
        self.first_frame_latency: float | None = None
        self.frames_out = 0
        self.closed = False

    def _run(self, chunk: np.ndarray, final: bool) -> list[np.ndarray]:
        if self.closed:
            raise InputError("this stream is closed; start a new one with Audio2Face.stream()")
        started = time.perf_counter()
        samples = check_samples(np.asarray(chunk, dtype=np.float32).reshape(-1), "audio chunk")
        frames: list[np.ndarray] = []
        for feats in self._encoder.feed(samples, final=final):
            frames += [self._output(f) for f in self._decoder.feed(feats)]
        if frames and self.first_frame_latency is None:
            self.first_frame_latency = time.perf_counter() - started
        self.frames_out += len(frames)
        return frames

    def feed(self, chunk: np.ndarray) -> list[np.ndarray]:
        """Add mono float32 16 kHz samples; returns the frames that became available."""
        return self._run(chunk, final=False)

    def close(self) -> list[np.ndarray]:
        """End of audio: returns the remaining frames."""
        frames = self._run(np.zeros(0, np.float32), final=True)
        self.closed = True
        return frames


class Audio2Face(Task):
    """Speech-driven 3D face animation (FaceFormer packages).

    Parameters
    ----------
    model:
        An ``audio2face`` package: directory, hub name (``"faceformer-vocaset"``) or
        :class:`ModelPackage` (``facelib convert faceformer``).
    backend, backend_options:
        Where to run (``"auto"``, ``"onnxruntime"``, a plugin backend).
    windowing:
        Encoder windows for long input (see the module docstring).
    max_context:
        Frames kept in the decoder's key/value cache (``None``: unbounded).
    basis:
        For coefficient models: an .npz with ``basis`` (K, V, 3) and optionally ``template``
        (V, 3) turning coefficients into vertices.
    """

    task_name = "audio2face"
    #: encoder and decoder sessions take turns: no spin-waiting (see WORKLOAD_OPTIONS)
    workload = "interleaved"

    def __init__(
        self,
        model: ModelSource,
        *,
        backend: BackendSource = "auto",
        backend_options: Mapping[str, Any] | None = None,
        windowing: Windowing | None = None,
        max_context: int | None = 600,
        basis: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(model, backend=backend, backend_options=backend_options)
        card = self.card
        meta = card.metadata
        try:
            self.dataset = str(meta["dataset"])
            self.period = int(meta["period"])
            self.decoder_heads = int(meta["decoder_heads"])
            self.subjects = [str(s) for s in meta["subjects"]]
            self.audio_per_frame = int(meta["audio_per_frame"])
            self.fps = float(card.outputs["fps"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelCardError(f"{self.package.root}: the card lacks FaceFormer field {exc}") from exc
        self.norm_eps = float(card.preprocessing.get("norm_eps", ff.NORM_EPS))
        self.kind = str(card.outputs.get("kind", "vertex_offsets"))
        self.windowing = windowing or Windowing()
        self.max_context = max_context
        self._style_weight = np.load(self.package.path("style"))
        self._template = np.load(self.package.path("template")) if "template" in card.files else None
        #: (F, 3) int32 triangles of the package's template (``None`` when it has none).
        self.faces = np.load(self.package.path("faces")) if "faces" in card.files else None
        self._basis: tuple[np.ndarray, np.ndarray | None] | None = None
        if basis is not None:
            self._basis = load_basis(basis)
        self._check_ranges()

    def _repr_options(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "fps": self.fps, "max_context": self.max_context}

    def _check_ranges(self) -> None:
        """A backend that compiles (TensorRT, ATC, TPU-MLIR, MagicMind) takes the input ranges of
        the card: encoder windows and the decoder cache must fit them (ONNX Runtime has no limit)."""
        if not self.backend.needs_compile:
            return
        audio = self.card.file("audio_encoder").shapes.get("input_values")
        past = self.card.file("decoder_step").shapes.get("past_key")
        w = self.windowing
        widest = max(
            w.whole_seconds, max(w.core_seconds, w.first_core_seconds or 0.0) + w.left_seconds + w.right_seconds
        )
        if audio is not None and widest * TARGET_RATE > audio.max[-1]:
            raise InputError(
                f"windowing needs encoder windows of up to {widest:g} s, but the model compiled for backend "
                f"{self.backend.name!r} takes at most {audio.max[-1] / TARGET_RATE:g} s of audio per call; "
                "use shorter windows (Windowing(whole_seconds=..., core_seconds=...))"
            )
        if past is not None and (self.max_context is None or self.max_context + 1 > past.max[0]):
            raise InputError(
                f"max_context={self.max_context} does not fit backend {self.backend.name!r}: the compiled decoder "
                f"keeps at most {past.max[0] - 1} past frames; pass max_context <= {past.max[0] - 1}"
            )

    # -- small helpers ------------------------------------------------------------------------

    def subject_index(self, subject: str | int | None) -> tuple[int, str]:
        """Resolve a speaking style by name or index (default: the first training subject)."""
        if subject is None:
            return 0, self.subjects[0]
        if isinstance(subject, int | np.integer) or (isinstance(subject, str) and subject.isdigit()):
            idx = int(subject)
            if not 0 <= idx < len(self.subjects):
                raise InputError(f"subject index {idx} is out of range 0..{len(self.subjects) - 1}")
            return idx, self.subjects[idx]
        if subject not in self.subjects:
            raise InputError(f"unknown subject {subject!r}; this model knows {self.subjects}")
        return self.subjects.index(subject), subject

    def style(self, index: int) -> np.ndarray:
        """(D,) style embedding of training subject ``index``."""
        return ff.style_vector(ff.style_one_hot(index, len(self.subjects)), self._style_weight)

    def _template_for(self, template: Any) -> np.ndarray | None:
        if template is None:
            return self._template
        from facelib.io.mesh import read_mesh

        return read_mesh(template).vertices

    def _output_fn(self, template: Any) -> Any:
        if self.kind == "coefficients":
            if self._basis is None:
                return lambda c: c
            basis, base = self._basis
            tpl = self._template_for(template)
            base = base if tpl is None or template is None else tpl
            flat = basis.reshape(len(basis), -1)

            def to_vertices(c: np.ndarray) -> np.ndarray:
                v = (c @ flat).reshape(-1, 3)
                return v + base if base is not None else v

            return to_vertices
        tpl = self._template_for(template)
        if tpl is None:
            raise InputError(
                "this package has no template mesh; pass template=PATH (.ply/.obj/.npy of the face to animate) "
                "or convert with --template"
            )
        expected = self.card.outputs.get("num_vertices")
        if expected is not None and tpl.shape[0] != int(expected):
            raise InputError(f"template has {tpl.shape[0]} vertices but the model animates {expected}")
        return lambda off: off.reshape(-1, 3) + tpl

    # -- running ------------------------------------------------------------------------------

    def _encoder(
        self,
        windowing: Windowing,
        total: int | None,
        stats: tuple[float, float] | None,
        calibration: np.ndarray | None = None,
    ) -> _Encoder:
        return _Encoder(self, self._session("audio_encoder"), windowing, total, stats, calibration)

    def _decoder(self, style: np.ndarray, max_context: int | None) -> _Decoder:
        return _Decoder(self, self._session("decoder_step"), style, max_context)

    def iter_frames(
        self,
        audio: AudioSource,
        subject: str | int | None = None,
        template: Any = None,
        *,
        sample_rate: int | None = None,
        causal: bool = False,
    ) -> Iterator[np.ndarray]:
        """Yield frames one by one (bounded memory for any length); see :meth:`predict`."""
        idx, _ = self.subject_index(subject)
        output = self._output_fn(template)
        windowing = STREAM_WINDOWING if causal else self.windowing
        blocks, total, stats = self._audio(audio, sample_rate, causal)
        if (
            total is not None
            and ff.video_frames(ff.hooked_length(ff.cnn_frames(total), self.dataset), self.dataset) < 1
        ):
            raise InputError(
                f"audio is too short ({total / TARGET_RATE * 1000:.0f} ms): at least "
                f"{1000 / self.fps + 50:.0f} ms are needed for one frame"
            )
        encoder = self._encoder(windowing, None if causal else total, None if causal else stats)
        decoder = self._decoder(self.style(idx), self.max_context)
        for block in blocks:
            for feats in encoder.feed(block):
                for off in decoder.feed(feats):
                    yield output(off)
        for feats in encoder.feed(np.zeros(0, np.float32), final=True):
            for off in decoder.feed(feats):
                yield output(off)

    def predict(
        self,
        audio: AudioSource,
        subject: str | int | None = None,
        template: Any = None,
        *,
        sample_rate: int | None = None,
        causal: bool = False,
        progress: bool = False,
    ) -> Audio2FaceResult:
        """Animate a face from speech.

        Parameters
        ----------
        audio:
            A file (any common format and rate; mixed to mono, resampled to 16 kHz) or a float
            array (N,) at ``sample_rate`` (default 16 kHz).
        subject:
            Speaking style: a training subject name or index (see :attr:`subjects`).
        template:
            The neutral face to animate: .ply/.obj/.npy path or (V, 3) array (default: the
            package's template).
        causal:
            Run exactly as :meth:`stream` would with its defaults (running statistics, nominal
            alignment, :data:`STREAM_WINDOWING`).

        Returns
        -------
        :class:`Audio2FaceResult` with (T, V, 3) float32 vertices (or (T, K) coefficients).
        """
        idx, name = self.subject_index(subject)
        frames = self.iter_frames(audio, idx, template, sample_rate=sample_rate, causal=causal)
        if progress:
            from facelib._progress import progress as bar

            frames = iter(bar(frames, total=None, desc="audio2face"))
        stacked = np.stack(list(frames)).astype(np.float32)
        if self.kind == "coefficients" and self._basis is None:
            return Audio2FaceResult(None, self.fps, name, stacked)
        return Audio2FaceResult(stacked, self.fps, name)

    def stream(
        self,
        subject: str | int | None = None,
        template: Any = None,
        *,
        windowing: Windowing = STREAM_WINDOWING,
        calibration: AudioSource | None = None,
        calibration_rate: int | None = None,
    ) -> Audio2FaceStream:
        """A streaming session: ``feed(chunk_16k) -> frames``, ``close() -> frames``.

        ``calibration``: speech recorded like the stream's (same microphone, gain and speaker;
        a file, or an array at ``calibration_rate`` Hz, default 16 kHz), a few seconds or more.
        wav2vec2 normalises its first layer over the whole utterance, whose loudness a stream
        only learns as it goes; the calibration's statistics stand in for it, weighted as
        ``windowing.prior_seconds`` of heard audio, and fade as the stream's own accumulate
        (docs/audio2face.md, "Streaming: error vs latency").
        """
        samples = None
        if calibration is not None:
            samples = load_audio(calibration, calibration_rate)
            if len(samples) < _FIELD:
                raise InputError(
                    f"calibration audio is too short ({len(samples)} samples at 16 kHz); give a few seconds of speech"
                )
        return Audio2FaceStream(self, subject, template, windowing, self.max_context, samples)

    def _audio(
        self, audio: AudioSource, sample_rate: int | None, causal: bool
    ) -> tuple[Iterator[np.ndarray] | list[np.ndarray], int | None, tuple[float, float] | None]:
        """Audio blocks at 16 kHz, the total sample count and (mean, var) of the utterance."""
        if isinstance(audio, np.ndarray):
            samples = load_audio(audio, sample_rate)
            return (
                [samples],
                len(samples),
                (float(samples.mean(dtype=np.float64)), float(samples.var(dtype=np.float64))),
            )
        path = Path(audio)
        info = audio_info(path)
        total = info.frames_at(TARGET_RATE)
        if total <= self.windowing.whole_seconds * TARGET_RATE or causal:
            samples = load_audio(path)
            return (
                [samples],
                len(samples),
                (float(samples.mean(dtype=np.float64)), float(samples.var(dtype=np.float64))),
            )
        # long file: one blockwise pass for the statistics, a second one to encode
        n, s, s2 = 0, 0.0, 0.0
        for block in iter_audio_blocks(path):
            b = block.astype(np.float64)
            n += len(b)
            s += float(b.sum())
            s2 += float((b * b).sum())
        mean = s / n
        return iter_audio_blocks(path), n, (mean, max(s2 / n - mean * mean, 0.0))


def load_basis(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """A linear motion basis npz: ``basis`` (K, V, 3) float32 and optional ``template`` (V, 3)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"basis file not found: {p}")
    with np.load(p) as z:
        if "basis" not in z:
            raise InputError(f"{p} needs an array 'basis' of shape (K, V, 3); it has {list(z.keys())}")
        basis = np.asarray(z["basis"], dtype=np.float32)
        template = np.asarray(z["template"], dtype=np.float32).reshape(-1, 3) if "template" in z else None
    if basis.ndim == 2:
        basis = basis.reshape(len(basis), -1, 3)
    return basis, template
