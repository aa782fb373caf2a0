"""Streaming Audio2Face: error against the whole-clip result vs latency (issue 19).

Run from the project root::

    python scripts/measure_audio2face_streaming.py                        # tiny reference checkpoint
    python scripts/measure_audio2face_streaming.py --checkpoint vocaset.pth --encoder-heads 12
    python scripts/measure_audio2face_streaming.py --checkpoint biwi.pth --dataset biwi --encoder-heads 12

The first form uses ``../shared/reference/faceformer_vocaset_tiny_seed1.pth`` (the only FaceFormer
weights on the project machines: random, with a small wav2vec2); the second re-runs the same
measurement on the released ``vocaset.pth`` (or ``biwi.pth`` with ``--dataset biwi``).  The table
goes to ``scratch/audio2face_streaming.md`` (``--out`` to change); docs/audio2face.md quotes it.
``--quick`` measures the look-ahead and normalisation rows only; ``--full-size`` measures past
context and look-ahead on the full-size architecture (random weights in the released layout, as in
benchmarks/bench_audio2face.py); ``--compute`` times the full-size streaming encoder call against
past context and look-ahead (recomputed whole vs the cached CNN, 1 and 2 threads);
``--calibration-split S`` streams the clip's first S seconds looped and calibrates with the rest
of it (held out), for several calibration weights; ``--diagnose`` runs the default stream with
its first-layer statistics partly replaced by the whole clip's (level / spectral shape / both);
``--clip`` picks another speech file.

What it measures, on 60 s of looped speech (``faceformer_test.wav``):

* reference: one encoder run over the whole clip and an unbounded decoder cache (``predict`` with
  ``Windowing(whole_seconds=1e9)``, ``max_context=None``); offsets with a zero template.  A second
  reference computes the same with the stream's frame alignment (vocaset's 50 -> 30 fps
  interpolation at the nominal ratio instead of ``align_corners`` over the whole clip, which a
  stream cannot know), separating what streaming costs from what that alignment costs;
* each streaming configuration runs through :meth:`Audio2Face.stream` with 20 ms chunks; for frame
  ``f`` (starting at ``f / fps`` s) the audio fed when it came out gives its latency
  ``fed / 16000 - f / fps``: the wait for look-ahead (maximum and mean over frames); ``compute``
  is the longest single ``feed`` call (the compute added to that wait);
* errors: max and mean absolute difference from the reference, in % of the reference's largest
  absolute vertex offset.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACELIB_SHARED", ROOT.parent / "shared"))
WAV = SHARED / "assets" / "media" / "audio" / "faceformer_test.wav"
TINY = SHARED / "reference" / "faceformer_vocaset_tiny_seed1.pth"
CHUNK = 320  # samples fed per call (20 ms)
sys.path.insert(0, str(ROOT))


def loop_speech(seconds: float, wav: Path = WAV, split: float | None = None) -> np.ndarray:
    """``seconds`` of ``wav`` looped (only its first ``split`` seconds when given)."""
    from facelib.io.audio import load_audio

    speech = load_audio(wav)
    if split is not None:
        speech = speech[: int(split * 16000)]
    return np.tile(speech, math.ceil(seconds * 16000 / len(speech)))[: int(seconds * 16000)]


def run_stream(
    task: object, audio: np.ndarray, template: np.ndarray, windowing: object, calibration: np.ndarray | None = None
) -> tuple:
    """Frames (T, V, 3), per-frame samples fed when each came out, longest feed() in seconds."""
    stream = task.stream(0, template, windowing=windowing, calibration=calibration)  # type: ignore[attr-defined]
    frames, fed_at, longest = [], [], 0.0
    for start in range(0, len(audio), CHUNK):
        chunk = audio[start : start + CHUNK]
        t0 = time.perf_counter()
        out = stream.feed(chunk)
        longest = max(longest, time.perf_counter() - t0)
        frames += out
        fed_at += [start + len(chunk)] * len(out)
    out = stream.close()
    frames += out
    fed_at += [len(audio)] * len(out)
    return np.stack(frames), np.asarray(fed_at), longest


#: What a configuration calibrates with (``calibrate`` key): the clip's held-out rest
#: (``--calibration-split``) or the streamed clip itself (an oracle: the whole clip's statistics).
HELD_OUT, ORACLE = "held-out", "oracle"


def configurations(quick: bool, full_size: bool = False, split: bool = False) -> list[dict[str, object]]:
    """Windowing keyword arguments of every configuration measured (``calibrate``: see HELD_OUT)."""
    from facelib.tasks.audio2face import STREAM_WINDOWING

    base: dict[str, object] = dict(core_seconds=0.5, first_core_seconds=0.3, left_seconds=2.0)
    default = attrs.asdict(STREAM_WINDOWING)
    del default["whole_seconds"]
    configs: list[dict[str, object]] = []
    if split:  # calibration speech: pseudo-count weights, and the cached CNN with it
        configs.append(default)
        for weight in (0.5, 1.0, 2.0, 3.0, 5.0):
            configs.append({**default, "prior_seconds": weight, "calibrate": HELD_OUT})
        configs.append({**default, "prior_seconds": 2.0, "cache_cnn": not default["cache_cnn"], "calibrate": HELD_OUT})
        configs.append({**default, "prior_seconds": 60.0, "calibrate": ORACLE})
        return configs
    if full_size:  # the full-size encoder is slow here: past context and look-ahead only
        configs.append({**base, "right_seconds": 0.5, "stream_normalization": "running"})
        for left in (1.0, 2.0, 3.0):
            for right in (0.25, 0.5, 1.0):
                configs.append(
                    {**base, "left_seconds": left, "right_seconds": right, "stream_normalization": "running_groupnorm"}
                )
        configs.append({**default, "prior_seconds": 60.0, "calibrate": ORACLE})  # the statistics known
        return configs  # (+ the default, cached CNN: recomputed above)
    rights = (0.25, 0.5, 1.0, 2.0)
    for norm in ("window", "running", "running_groupnorm"):  # look-ahead and normalisation
        for right in rights:
            configs.append({**base, "right_seconds": right, "stream_normalization": norm})
    if quick:
        return configs
    gn: dict[str, object] = {**base, "stream_normalization": "running_groupnorm"}
    for left in (1.0, 3.0, 5.0):  # past context (attention span; encoder cost grows with it)
        for right in (0.25, 0.5, 1.0):
            configs.append({**gn, "left_seconds": left, "right_seconds": right})
    for core, right in ((0.2, 0.25), (0.2, 0.5), (1.0, 0.5)):  # window length (how often context is re-encoded)
        configs.append({**gn, "core_seconds": core, "first_core_seconds": None, "right_seconds": right})
    for right in (0.5, 1.0):  # cross-fading the seams
        configs.append({**gn, "right_seconds": right, "crossfade_seconds": 0.25})
    for first in (0.5, 1.0, 2.0):  # a longer first window: the first frames hear more audio
        configs.append({**default, "first_core_seconds": first})
    # (the default keeps past CNN features, normalised with older statistics; the same windows
    # recomputed whole are the look-ahead rows above)
    configs.append({**default, "prior_seconds": 60.0, "calibrate": ORACLE})  # the statistics known
    return configs


def whole_nominal(task: object, audio: np.ndarray, dataset: str) -> np.ndarray:
    """The whole-clip result with the stream's alignment (nominal 50/30 positions): one encoder run
    over the clip, standardised over the clip, unbounded decoder."""
    from facelib.processing import faceformer as ff

    values = ff.normalize_audio(audio, eps=task.norm_eps)  # type: ignore[attr-defined]
    cnn = ff.cnn_frames(len(audio))
    pos = np.minimum(ff.nominal_positions(0, ff.hooked_length(cnn, dataset), dataset), cnn - 1)
    session = task._session("audio_encoder")  # type: ignore[attr-defined]
    feats = session.run({"input_values": values[None], "positions": pos.astype(np.float32)})["features"][0]
    decoder = task._decoder(task.style(0), None)  # type: ignore[attr-defined]
    return np.stack(decoder.feed(np.asarray(feats, np.float32))).reshape(len(feats) // task.audio_per_frame, -1, 3)  # type: ignore[attr-defined]


def alignment_shift(samples: int, dataset: str) -> float:
    """How far (in 50 Hz CNN frames) upstream's last frame samples the features from the nominal
    50/30 position: ``align_corners=True`` stretches the 50 -> 30 fps resampling to the clip."""
    from facelib.processing import faceformer as ff

    if dataset != "vocaset":
        return 0.0
    cnn = ff.cnn_frames(samples)
    out = ff.hooked_length(cnn, dataset)
    return float(ff.hook_positions(cnn, dataset, out - 1, out)[0] - ff.nominal_positions(out - 1, out, dataset)[0])


def full_size_package() -> tuple[Path, Path]:
    """The full-size random-weight vocaset checkpoint of benchmarks/bench_audio2face.py and its
    package (made once under scratch/streaming_full)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_audio2face import make_checkpoint

    from facelib.models.convert.faceformer import build_package

    scratch = ROOT / "scratch" / "streaming_full"
    scratch.mkdir(parents=True, exist_ok=True)
    ckpt = scratch / "faceformer_vocaset_full_random.pth"
    if not ckpt.is_file():
        make_checkpoint(ckpt)
    pkg = scratch / "pkg"
    if not (pkg / "audio_context_stream.onnx").is_file():
        build_package({"checkpoint": ckpt}, pkg, dataset="vocaset")
    return ckpt, pkg


def compute_table(args: argparse.Namespace) -> list[str]:
    """Encoder time per 0.5 s window vs past context on the full-size architecture (random weights
    in the released layout, benchmarks/bench_audio2face.py): the streaming graph over the whole
    window ("recompute") against the conv stack on the window's new audio plus the rest of the
    encoder over the whole window ("cached CNN", ``Windowing(cache_cnn=True)``), on 1 and 2 ONNX
    Runtime threads, every contender alternated in one process."""
    import onnxruntime as ort

    from facelib.processing import faceformer as ff

    pkg = full_size_package()[1]

    def session(name: str, threads: int) -> Any:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        return ort.InferenceSession(str(pkg / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])

    threads = (1, 2)
    sessions = {
        t: {name: session(name, t) for name in ("audio_encoder_stream", "audio_cnn_stream", "audio_context_stream")}
        for t in threads
    }
    audio = loop_speech(10.0)
    core, spans = 0.5, [(left, right) for left in (1.0, 2.0, 3.0) for right in (0.25, 0.5)]
    stats = {"conv_mean": np.zeros(512, np.float32), "conv_var": np.ones(512, np.float32)}
    new_frames = round(core * 50)  # CNN frames a 0.5 s window adds
    calls: list[tuple[str, Any]] = []
    for t in threads:
        s = sessions[t]
        for left, right in spans:
            n = int((left + core + right) * 16000)
            cnn = ff.cnn_frames(n)
            pos = np.minimum(ff.nominal_positions(0, ff.hooked_length(cnn, "vocaset"), "vocaset"), cnn - 1)
            whole = {"input_values": audio[None, :n], "positions": pos.astype(np.float32), **stats}
            features = s["audio_cnn_stream"].run(None, {"input_values": audio[None, :n], **stats})[0]
            fresh = audio[None, n - ((new_frames - 1) * 320 + 400) :]
            fresh = fresh[:, : (new_frames - 1) * 320 + 400]

            def recompute(s: Any = s, whole: dict[str, np.ndarray] = whole) -> None:
                s["audio_encoder_stream"].run(None, whole)

            def cached(s: Any = s, fresh: np.ndarray = fresh, features: np.ndarray = features, pos: Any = pos) -> None:
                s["audio_cnn_stream"].run(None, {"input_values": fresh, **stats})
                s["audio_context_stream"].run(None, {"cnn": features, "positions": pos.astype(np.float32)})

            calls += [(f"{t}|{left:g}|{right:g}|recompute", recompute), (f"{t}|{left:g}|{right:g}|cached", cached)]
    for _, call in calls:  # warm-up
        call()
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {key: [] for key, _ in calls}
    for _ in range(args.rounds):  # A B C ... A B C: load hits every contender alike
        for key, call in calls:
            t0 = time.perf_counter()
            call()
            times[key].append(time.perf_counter() - t0)
    load_after = os.getloadavg()[0]
    lines = [
        "##### Encoder time per window vs past context, full-size architecture",
        "",
        f"`scripts/measure_audio2face_streaming.py --compute` on {datetime.date.today()} ({platform.machine()}, "
        f"{os.cpu_count()} CPUs shared with other jobs; 1-minute load average {load_before:.1f} before, "
        f"{load_after:.1f} after): the streaming encoder of a full-size random-weight vocaset checkpoint "
        "(wav2vec2-base sizes) for one 0.5 s window, median of "
        f"{args.rounds} rounds with every contender (threads, past, look-ahead, method) alternated in one "
        "process.  *recompute*: the whole window through `audio_encoder_stream`; *cached CNN*: the conv stack "
        "on the window's 0.5 s of new audio (`audio_cnn_stream`) + the rest over the whole window "
        "(`audio_context_stream`).  Latency of a frame = the wait for its audio (at most core + look-ahead "
        "+ 25 ms) + this compute.",
        "",
        "| threads | past (s) | look-ahead (s) | audio per call (s) | recompute median (ms) | cached CNN median (ms) "
        "| worst latency with cached CNN = 0.5 + look-ahead + 0.025 + call (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in threads:
        for left, right in spans:
            plain = float(np.median(times[f"{t}|{left:g}|{right:g}|recompute"]))
            cache = float(np.median(times[f"{t}|{left:g}|{right:g}|cached"]))
            lines.append(
                f"| {t} | {left:g} | {right:g} | {left + core + right:g} | {plain * 1e3:.0f} | {cache * 1e3:.0f} "
                f"| {core + right + 0.025 + cache:.2f} |"
            )
    return lines


def diagnose(task: Any, audio: np.ndarray, template: np.ndarray, goal: np.ndarray, scale: float) -> list[str]:
    """Where the first seconds' error comes from: the default stream with its first-layer
    GroupNorm statistics partly replaced by the whole clip's.  Per channel c the conv layer has
    no bias, so mean_c = w_c . E[x] and var_c = sigma^2 * w_c^T R w_c: the audio's level (sigma^2,
    one number) times a spectral-shape term (R: the lag autocorrelation of the standardised
    input over the kernel).  *level*: the whole clip's sigma^2 with the stream's running shape;
    *shape*: the stream's running sigma^2 with the whole clip's shape; *both*: the whole clip's
    statistics (an oracle)."""
    from facelib.tasks.audio2face import STREAM_WINDOWING, conv_sums

    fps = task.fps
    x = audio.astype(np.float64)
    level = float(x.var())
    rows = []
    for mode in ("running", "level", "shape", "both"):
        stream = task.stream(0, template, windowing=STREAM_WINDOWING)
        encoder = stream._encoder
        weight, bias, stride = encoder.conv0
        n, s1, s2 = conv_sums(x, weight, bias, stride)
        whole_mean, whole_var = s1 / n, s2 / n - (s1 / n) ** 2
        running_conv, running_audio = encoder._conv_stats, encoder._running_stats

        def conv_stats(
            stop: int,
            mode: str = mode,
            conv: Any = running_conv,
            sound: Any = running_audio,
            whole_mean: np.ndarray = whole_mean,
            whole_var: np.ndarray = whole_var,
        ) -> Any:
            mean, var = conv(stop)
            heard = max(sound(stop)[1], 1e-12)
            if mode == "level":  # the stream's shape (var / its level) at the whole clip's level
                return mean, var / heard * level
            if mode == "shape":
                return mean, whole_var / level * heard
            return (whole_mean, whole_var) if mode == "both" else (mean, var)

        encoder._conv_stats = conv_stats
        if mode in ("level", "both"):  # the GroupNorm epsilon's share follows the level too
            encoder._running_stats = lambda stop: (0.0, level)
        frames = []
        for start in range(0, len(audio), CHUNK * 25):
            frames += stream.feed(audio[start : start + CHUNK * 25])
        got = np.stack(frames + stream.close())
        k = min(len(got), len(goal))
        err = np.abs(got[:k] - goal[:k]).reshape(k, -1).max(axis=1) / scale
        per_second = [float(err[round(i * fps) : round((i + 1) * fps)].max()) for i in range(6)]
        rows.append(
            f"| {mode} | {err.max():.1%} | "
            + " | ".join(f"{e:.1%}" for e in per_second)
            + f" | {err[round(5 * fps) :].max():.1%} | {float(np.abs(got[:k] - goal[:k]).mean()) / scale:.2%} |"
        )
    return [
        "| first-layer statistics | max, every frame | "
        + " | ".join(f"max {i}-{i + 1} s" for i in range(6))
        + " | max after 5 s | mean |",
        "|---|---|" + "---|" * 6 + "---|---|",
        *rows,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=TINY)
    parser.add_argument("--dataset", default="vocaset", choices=("vocaset", "biwi"))
    parser.add_argument("--encoder-heads", type=int, default=None, help="wav2vec2 heads (tiny: 4, base: 12)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="fewer configurations")
    parser.add_argument(
        "--full-size", action="store_true", help="the full-size random-weight architecture (vocaset layout)"
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds excluded from the after-warm-up column")
    parser.add_argument("--compute", action="store_true", help="only the full-size encoder call-time table")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads for --compute")
    parser.add_argument("--rounds", type=int, default=5, help="rounds for --compute")
    parser.add_argument("--clip", type=Path, default=WAV, help="speech to loop (default: faceformer_test.wav)")
    parser.add_argument(
        "--calibration-split",
        type=float,
        default=None,
        metavar="S",
        help="stream the clip's first S seconds (looped) and calibrate with the rest of it (held out)",
    )
    parser.add_argument(
        "--diagnose", action="store_true", help="only the warm-up diagnosis (statistics partly the whole clip's)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "scratch" / "audio2face_streaming.md")
    args = parser.parse_args()
    if args.compute:
        out = args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(compute_table(args)) + "\n"
        out.with_suffix(".tmp").write_text(text, encoding="utf-8")
        os.replace(out.with_suffix(".tmp"), out)
        print(text)
        return 0
    from facelib.models.convert.faceformer import build_package
    from facelib.tasks.audio2face import STREAM_WINDOWING, Audio2Face, Windowing

    heads = args.encoder_heads or (4 if args.checkpoint == TINY else 12)
    audio = loop_speech(args.seconds, args.clip, args.calibration_split)
    held_out = None
    if args.calibration_split is not None:
        from facelib.io.audio import load_audio

        held_out = load_audio(args.clip)[int(args.calibration_split * 16000) :]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        if args.full_size:
            args.checkpoint, pkg = full_size_package()
            args.dataset = "vocaset"
        else:
            pkg = build_package(
                {"checkpoint": args.checkpoint}, Path(scratch) / "pkg", dataset=args.dataset, encoder_heads=heads
            ).root
        with Audio2Face(pkg, windowing=Windowing(whole_seconds=1e9), max_context=None) as whole:
            verts = int(whole.card.outputs["num_vertices"])
            template = np.zeros((verts, 3), np.float32)
            reference = whole.predict(audio, 0, template).vertices
            nominal = whole_nominal(whole, audio, args.dataset)
            fps = whole.fps
        assert reference is not None
        scale = float(np.abs(reference).max())
        if args.diagnose:
            with Audio2Face(pkg) as task:
                goal = nominal if args.dataset == "vocaset" else reference
                table = diagnose(task, audio, template, goal[: len(reference)], scale)
            text = "\n".join(
                [
                    f"##### Warm-up diagnosis: {args.checkpoint.name}, {args.clip.name} looped to {args.seconds:g} s",
                    "",
                    f"`scripts/measure_audio2face_streaming.py --diagnose` on {datetime.date.today()}: the default "
                    "stream against the goal's reference, its first-layer GroupNorm statistics partly replaced by "
                    "the whole clip's (see `diagnose`); errors in % of the largest offset.",
                    "",
                    *table,
                ]
            )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.with_suffix(".tmp").write_text(text + "\n", encoding="utf-8")
            os.replace(args.out.with_suffix(".tmp"), args.out)
            print(text)
            return 0
        with Audio2Face(pkg) as task:
            offline = task.predict(audio, 0, template).vertices
            assert offline is not None
            kinds = configurations(args.quick, args.full_size, args.calibration_split is not None)
            calibrations = [str(kw.pop("calibrate", "")) for kw in kinds]
            configs = [Windowing(whole_seconds=0.0, **kw) for kw in kinds]  # type: ignore[arg-type]
            if STREAM_WINDOWING not in configs:
                configs, calibrations = [*configs, STREAM_WINDOWING], [*calibrations, ""]
            for windowing, calibrate in zip(configs, calibrations, strict=True):
                speech = {HELD_OUT: held_out, ORACLE: audio}.get(calibrate)
                frames, fed_at, longest = run_stream(task, audio, template, windowing, speech)
                n = min(len(frames), len(reference), len(nominal))
                # per-frame largest vertex error, in units of the reference's largest offset
                err = np.abs(frames[:n] - reference[:n]).reshape(n, -1).max(axis=1) / scale
                mean = float(np.abs(frames[:n] - reference[:n]).mean()) / scale
                err_nom = np.abs(frames[:n] - nominal[:n]).reshape(n, -1).max(axis=1) / scale
                mean_nom = float(np.abs(frames[:n] - nominal[:n]).mean()) / scale
                # the goal's reference: vocaset's whole-clip alignment is unknowable to a stream
                goal = err_nom if args.dataset == "vocaset" else err
                wait = fed_at[:n] / 16000 - np.arange(n) / fps
                warm = round(args.warmup * fps)
                row = Row(
                    windowing,
                    float(wait.max()),
                    float(wait.mean()),
                    longest,
                    float(err.max()),
                    mean,
                    float(err_nom.max()),
                    mean_nom,
                    float(goal.max()),
                    mean_nom if args.dataset == "vocaset" else mean,
                    float(goal[warm:].max()),
                    settled(goal, 0.05) / fps,
                    windowing == STREAM_WINDOWING and not calibrate,
                    calibrate,
                )
                rows.append(row)
                print(
                    f"{describe(windowing, calibrate)}: wait max {row.wait_max:.2f} s, "
                    f"compute {longest * 1e3:.0f} ms, error max "
                    f"{row.max:.1%} mean {row.mean:.2%}; vs nominal alignment max {row.nominal_max:.1%} "
                    f"mean {row.nominal_mean:.2%}; goal after warm-up {row.goal_warm:.1%}",
                    flush=True,
                )
        align = np.abs(nominal[: len(reference)] - reference[: len(nominal)])
        floors = {
            "whole clip with the stream's alignment"
            + (
                " (nominal 50/30 positions)" if args.dataset == "vocaset" else " (BIWI: no resampling, the same)"
            ): align,
            "offline windowed `predict` (20 s windows)": np.abs(offline[: len(reference)] - reference),
        }
    shift = alignment_shift(len(audio), args.dataset)
    write(args, rows, scale, fps, {k: (v.max() / scale, v.mean() / scale) for k, v in floors.items()}, shift)
    return 0


def settled(errors: np.ndarray, bound: float) -> int:
    """The first frame from which every frame's error is within ``bound`` (len: never)."""
    over = np.flatnonzero(errors > bound)
    return int(over[-1]) + 1 if len(over) else 0


@attrs.frozen
class Row:
    """One streaming configuration's figures (errors as fractions of the largest offset)."""

    windowing: Any
    wait_max: float
    wait_mean: float
    compute: float
    max: float
    mean: float
    nominal_max: float
    nominal_mean: float
    goal_max: float  # against the goal's reference (vocaset: the stream's alignment)
    goal_mean: float
    goal_warm: float  # max error against the goal's reference after the warm-up
    settle: float  # seconds after which every frame is within 5% of the goal's reference
    default: bool
    calibration: str  # "", HELD_OUT or ORACLE


def describe(w: Any, calibration: str = "") -> str:
    return (
        f"core {w.core_seconds:g} s, past {w.left_seconds:g} s, look-ahead {w.right_seconds:g} s, "
        f"{w.stream_normalization} norm, fade {w.crossfade_seconds:g} s"
        + (f", {extras(w, calibration)}" if extras(w, calibration) != "-" else "")
    )


def extras(w: Any, calibration: str) -> str:
    """The cached CNN and the calibration of a configuration, in words ("-": neither)."""
    words = ["cached CNN"] if w.cache_cnn else []
    if calibration == HELD_OUT:
        words.append(f"calibrated on the held-out rest, weight {w.prior_seconds:g} s")
    elif calibration == ORACLE:
        words.append(f"oracle: calibrated on the clip itself, weight {w.prior_seconds:g} s")
    return "; ".join(words) or "-"


def write(
    args: argparse.Namespace,
    rows: list[Row],
    scale: float,
    fps: float,
    floors: dict[str, tuple[float, float]],
    shift: float,
) -> None:
    vocaset = args.dataset == "vocaset"
    goal_ref = "the whole clip with the stream's alignment" if vocaset else "the whole clip"
    split = args.calibration_split
    part = f": its first {split:g} s" if split is not None else ""
    lines = [
        f"##### {args.checkpoint.name}, {args.clip.name}{part} looped to {args.seconds:g} s",
        "",
        f"`scripts/measure_audio2face_streaming.py` on {datetime.date.today()} "
        f"({platform.machine()}, {os.cpu_count()} CPUs), {fps:g} fps; largest vertex offset of the "
        f"whole-clip reference {scale:.3e}.  Errors in % of it (max: the largest vertex error of any frame; "
        "mean: over all frames and coordinates); wait = audio that must arrive after a frame's first sample "
        "before the frame comes out (max / mean over frames); compute = the longest `feed` call with this "
        f"checkpoint on this shared machine; last two columns: max error against {goal_ref} (the goal's "
        f"reference) once the stream has heard {args.warmup:g} s, and the time from which every frame is within "
        "5% of it."
        + (
            f"  Calibration speech: the rest of {args.clip.name} after {split:g} s (same speaker and recording, "
            "words not in the stream), given to `stream(calibration=...)` with the weight shown."
            if split is not None
            else ""
        ),
        "",
    ]
    for name, (emax, emean) in floors.items():
        lines.append(f"* {name}: max {emax:.1%}, mean {emean:.2%} from the whole-clip result")
    if vocaset:
        lines.append(
            f"* alignment: at the end of this clip upstream's `align_corners` resampling samples the features "
            f"{shift:.2f} CNN frames ({shift * 20:.0f} ms) from the nominal 50/30 position, growing linearly from "
            "0 at the first frame; the shift depends on the clip's total length, unknown to a stream"
        )
    lines += [
        "",
        "| core / past / look-ahead (s) | normalisation | cross-fade (s) | cached CNN, calibration "
        "| wait max / mean (s) | compute max (ms) "
        f"| vs whole clip: max / mean | vs whole clip, stream alignment: max / mean | max after {args.warmup:g} s "
        "| within 5% from (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w = r.windowing
        first = "" if w.first_core_seconds is None else f" (first {w.first_core_seconds:g})"
        mark = " **default**" if r.default else ""
        lines.append(
            f"| {w.core_seconds:g}{first} / {w.left_seconds:g} / {w.right_seconds:g}{mark} "
            f"| {w.stream_normalization} | {w.crossfade_seconds:g} | {extras(w, r.calibration)} "
            f"| {r.wait_max:.2f} / {r.wait_mean:.2f} "
            f"| {r.compute * 1e3:.0f} | {r.max:.1%} / {r.mean:.2%} | {r.nominal_max:.1%} / {r.nominal_mean:.2%} "
            f"| {r.goal_warm:.1%} | {r.settle:.1f} |"
        )
    lines.append("")
    for label, key in (("over every frame", "goal_max"), (f"after the first {args.warmup:g} s", "goal_warm")):
        ok = [r for r in rows if getattr(r, key) <= 0.05 and r.goal_mean <= 0.05 and r.calibration != ORACLE]
        if ok:
            r = min(ok, key=lambda r: (round(r.wait_max, 2), round(getattr(r, key), 3), r.compute))
            lines.append(
                f"* Lowest wait within 5% of the largest offset against {goal_ref}, {label} (oracle rows aside): "
                f"{describe(r.windowing, r.calibration)} "
                f"(wait max {r.wait_max:.2f} s, max error {getattr(r, key):.1%}, mean {r.goal_mean:.2%})."
            )
        else:
            lines.append(
                f"* No configuration (oracle rows aside) is within 5% of the largest offset against {goal_ref}, "
                f"{label}."
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
