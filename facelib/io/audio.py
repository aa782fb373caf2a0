"""Audio input: any common format at any rate -> mono float32 at a target rate (16 kHz default).

Whole files are read with :func:`load_audio`; long files are read block by block with
:func:`iter_audio_blocks` (soundfile blocks + a streaming soxr resampler, bounded memory), so
ten minutes of speech never has to be in memory at once.  Containers libsndfile cannot read
(``.m4a``/AAC, the audio track of an ``.mp4``/``.mov``/``.mkv`` video, ``.opus`` in WebM ...)
are decoded by ffmpeg (imageio-ffmpeg's binary, the ``media`` extra, or ffmpeg on PATH) straight
to mono float32 at the target rate, read from its pipe block by block (their length costs one
extra decoding pass, counted and not kept).  Multi-channel audio is mixed down by
averaging the channels (as ``librosa.to_mono``); integer PCM (8/16/24/32-bit) becomes float in
[-1, 1].  Silence is valid input.  Errors: :class:`MediaReadError` for missing, empty, corrupt or
undecodable files; :class:`InputError` for NaN/inf samples or unusable arrays.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np

from facelib.errors import InputError, MediaReadError

PathLike = str | os.PathLike[str]
TARGET_RATE = 16000


@attrs.frozen
class AudioInfo:
    """What a file holds: ``frames`` samples per channel at ``sample_rate`` Hz, ``channels``."""

    path: Path
    sample_rate: int
    frames: int
    channels: int
    subtype: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def frames_at(self, rate: int) -> int:
        """Samples after resampling to ``rate`` (soxr output length)."""
        return round(self.frames * rate / self.sample_rate)


def _check_path(path: PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        raise MediaReadError(f"{p} is a directory, not an audio file")
    if not p.is_file():
        raise MediaReadError(f"audio file not found: {p}")
    if p.stat().st_size == 0:
        raise MediaReadError(f"{p} is empty (0 bytes); it holds no audio")
    return p


def audio_info(path: PathLike) -> AudioInfo:
    """Header facts of an audio file (no decoding of the samples)."""
    import soundfile as sf

    p = _check_path(path)
    try:
        info = sf.info(str(p))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError for corrupt files
        length = _ffmpeg_length(p, TARGET_RATE)
        if length is None:
            raise MediaReadError(
                f"cannot read {p} as audio ({exc}); it may be corrupt, or in a format only ffmpeg decodes "
                "(.m4a, a video's audio track): pip install 'facelib[media]' or put ffmpeg on PATH"
            ) from exc
        return AudioInfo(p, TARGET_RATE, length, 1, FFMPEG_SUBTYPE)
    if info.frames <= 0:
        raise MediaReadError(f"{p} has no audio samples")
    return AudioInfo(p, int(info.samplerate), int(info.frames), int(info.channels), str(info.subtype))


#: :attr:`AudioInfo.subtype` of files that only ffmpeg decodes (reported mono at the target rate).
FFMPEG_SUBTYPE = "ffmpeg"
_LENGTHS: dict[tuple[str, float, int, int], int] = {}  # samples ffmpeg decoded, by file and rate
_FFMPEG_BLOCK_SECONDS = 10.0


def _ffmpeg_blocks(path: Path, rate: int, block_seconds: float = _FFMPEG_BLOCK_SECONDS) -> Iterator[np.ndarray] | None:
    """Mono float32 blocks of about ``block_seconds`` at ``rate``, decoded by ffmpeg as they are
    read from its pipe (bounded memory); None without ffmpeg.

    The iterator raises :class:`MediaReadError` when ffmpeg finds no audio stream or fails
    part-way (after the blocks it did decode); closing it early stops ffmpeg.
    """
    from facelib.io.ffmpeg import find_ffmpeg

    exe = find_ffmpeg()
    if exe is None:
        return None
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", os.fspath(path)]
    cmd += ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"]
    return _run_ffmpeg(cmd, path, max(1, int(block_seconds * rate)))


def _run_ffmpeg(cmd: list[str], path: Path, block: int) -> Iterator[np.ndarray]:
    import subprocess
    import tempfile

    total = 0
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: ffmpeg never blocks on its messages
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        try:
            pending = b""
            while True:
                data = proc.stdout.read(block * 4 - len(pending))
                if not data:
                    break
                pending += data
                if len(pending) < block * 4:
                    continue
                samples = np.frombuffer(pending, dtype="<f4").astype(np.float32)
                pending = b""
                total += len(samples)
                yield check_samples(samples, str(path))
            if len(pending) >= 4:
                samples = np.frombuffer(pending[: len(pending) // 4 * 4], dtype="<f4").astype(np.float32)
                total += len(samples)
                yield check_samples(samples, str(path))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()
        if proc.returncode != 0 or total == 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace").strip()
            why = text.splitlines()[-1] if text else "no audio samples"
            if "matches no streams" in text:
                why = "it has no audio track"
            if total:
                why = f"ffmpeg stopped after {total} samples: {why}"
            raise MediaReadError(f"cannot read {path} as audio: {why}")


def _ffmpeg_length(path: Path, rate: int) -> int | None:
    """Samples ffmpeg decodes from ``path`` at ``rate`` (one decoding pass, counted, not kept;
    remembered per file); None without ffmpeg."""
    stat = path.stat()
    key = (os.fspath(path.resolve()), stat.st_mtime, stat.st_size, rate)
    if key not in _LENGTHS:
        blocks = _ffmpeg_blocks(path, rate)
        if blocks is None:
            return None
        _LENGTHS[key] = sum(len(b) for b in blocks)
    return _LENGTHS[key]


def _ffmpeg_decode(path: Path, rate: int) -> np.ndarray | None:
    """All of ``path``'s audio as mono float32 at ``rate`` through ffmpeg; None without ffmpeg."""
    blocks = _ffmpeg_blocks(path, rate)
    return None if blocks is None else np.concatenate(list(blocks))


def _mono(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block, dtype=np.float32)
    return block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block


def check_samples(samples: np.ndarray, where: str = "audio") -> np.ndarray:
    """Raise :class:`InputError` for NaN/inf samples; returns the array unchanged."""
    if not np.isfinite(samples).all():
        bad = int(np.size(samples) - np.isfinite(samples).sum())
        raise InputError(f"{where} contains {bad} NaN or infinite samples; clean the signal first")
    return samples


def resample(samples: np.ndarray, rate: int, target: int = TARGET_RATE) -> np.ndarray:
    """Resample mono float32 audio (soxr HQ, as ``librosa.resample``'s default)."""
    if rate == target:
        return np.asarray(samples, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(samples, dtype=np.float32), rate, target, quality="HQ").astype(np.float32)


def load_audio(
    source: PathLike | np.ndarray, sample_rate: int | None = None, target_rate: int = TARGET_RATE
) -> np.ndarray:
    """Read a whole audio file (or take an array) as mono float32 at ``target_rate``.

    Parameters
    ----------
    source:
        A file path (WAV, FLAC, OGG, MP3, AIFF, ... any libsndfile format; other containers via
        librosa/audioread) or an array (N,) / (N, C) of samples.
    sample_rate:
        Rate of an array source in Hz (default: ``target_rate``); ignored for files.

    Returns
    -------
    (N,) float32 samples at ``target_rate`` Hz, nominally in [-1, 1].
    """
    if isinstance(source, np.ndarray):
        arr = np.asarray(source)
        if arr.ndim == 2 and arr.shape[0] < arr.shape[1] and arr.shape[0] <= 8:
            arr = arr.T  # (C, N) -> (N, C)
        if arr.ndim not in (1, 2) or arr.size == 0:
            raise InputError(f"audio array must be (N,) or (N, channels) and non-empty, got shape {arr.shape}")
        if arr.dtype.kind in "iu":
            limits = np.iinfo(arr.dtype)
            arr = (arr.astype(np.float64) - (limits.max + limits.min + 1) / 2) / ((limits.max - limits.min + 1) / 2)
        mono = check_samples(_mono(arr))
        return resample(mono, int(sample_rate or target_rate), target_rate)
    p = _check_path(source)
    try:
        info = audio_info(p)
    except MediaReadError as first:
        try:
            return _load_fallback(p, target_rate)
        except MediaReadError:
            raise first from None  # the first reader's reason is the informative one
    if info.subtype == FFMPEG_SUBTYPE:
        samples = _ffmpeg_decode(p, target_rate)
        assert samples is not None  # audio_info only reports FFMPEG_SUBTYPE when ffmpeg exists
        return samples
    blocks = list(iter_audio_blocks(p, target_rate=target_rate, block_seconds=max(info.duration, 1.0) + 1))
    if not blocks:
        raise MediaReadError(f"{p} holds too little audio to resample to {target_rate} Hz")
    return np.concatenate(blocks)


def _load_fallback(path: Path, target_rate: int) -> np.ndarray:
    import warnings

    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples, _ = librosa.load(str(path), sr=target_rate, mono=True)
    except Exception as exc:
        raise MediaReadError(
            f"cannot decode {path} as audio ({type(exc).__name__}: {exc}); it may be corrupt or not audio"
        ) from exc
    if samples.size == 0:
        raise MediaReadError(f"{path} decoded to 0 samples")
    return check_samples(samples.astype(np.float32), str(path))


def iter_audio_blocks(
    path: PathLike, target_rate: int = TARGET_RATE, block_seconds: float = 10.0
) -> Iterator[np.ndarray]:
    """Yield a file's audio as consecutive mono float32 blocks at ``target_rate`` (bounded memory).

    Each block holds about ``block_seconds`` of audio (the last may be shorter); the blocks
    concatenate to the whole resampled signal (streaming soxr, no seams).
    """
    import soundfile as sf

    info = audio_info(path)
    block = max(1, int(block_seconds * info.sample_rate))
    if info.subtype == FFMPEG_SUBTYPE:
        blocks = _ffmpeg_blocks(info.path, target_rate, block_seconds)
        assert blocks is not None  # audio_info only reports FFMPEG_SUBTYPE when ffmpeg exists
        yield from blocks
        return
    stream = None
    if info.sample_rate != target_rate:
        import soxr

        stream = soxr.ResampleStream(info.sample_rate, target_rate, 1, dtype="float32", quality="HQ")
    total = 0
    try:
        with sf.SoundFile(str(info.path)) as fh:
            while True:
                data = fh.read(block, dtype="float32", always_2d=True)
                last = len(data) < block
                mono = check_samples(_mono(data), str(info.path))
                out = mono if stream is None else stream.resample_chunk(mono, last=last)
                total += len(data)
                if len(out):
                    yield np.ascontiguousarray(out, dtype=np.float32)
                if last:
                    break
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise MediaReadError(f"{info.path} is corrupt or truncated after {total} samples ({exc})") from exc
    if total == 0:
        raise MediaReadError(f"{info.path} has no audio samples")


def write_wav(path: PathLike, samples: np.ndarray, sample_rate: int = TARGET_RATE) -> Path:
    """Write mono float samples as 16-bit PCM WAV (for muxing into rendered videos)."""
    import soundfile as sf

    p = Path(path)
    sf.write(str(p), np.clip(np.asarray(samples, dtype=np.float32), -1, 1), sample_rate, subtype="PCM_16")
    return p
