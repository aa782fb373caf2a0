"""Audio2Face benchmark: facelib vs upstream FaceFormer ``predict`` on the same machine, same run.

Run from the project root::

    python benchmarks/bench_audio2face.py [--cores N] [--rounds 5] [--quick]

What it does (all scratch files under ``scratch/bench_audio2face``, git-ignored):

1. builds a FULL-SIZE random FaceFormer checkpoint in the released ``vocaset.pth`` layout
   (wav2vec2-base-960h sizes: width 768, 12 layers, 12 heads, FFN 3072, CNN 512 channels,
   positional conv 128/16 with legacy ``weight_g``/``weight_v``; feature_dim 64; V = 5023;
   8 subjects) with numpy/torch at run time;
2. converts it with ``facelib.models.convert.faceformer``;
3. runs upstream (EvelynFan/FaceFormer @dfaea81 from ``$FACELIB_SHARED/upstream/FaceFormer``,
   with the ``transformers`` pinned in benchmarks/requirements.txt) and facelib on
   ``../shared/assets/media/audio/faceformer_test.wav`` (11.5 s, 44.1 kHz), alternating round by
   round, torch and ONNX Runtime on ``--cores`` threads (facelib's defaults beside), each call
   from the file to the vertices; the encoder's share is timed inside the same calls; checks
   that both agree;
4. on all cores only: times facelib per frame from 10 s to 60 s of (looped) speech, the any-length
   accuracy, the first streamed frame, and the peak RSS of a long file in a fresh process.

Upstream needs two shims to run offline with today's transformers: ``from_pretrained`` is
replaced by the base-960h config (weights come from our checkpoint), and
``feature_projection`` returns a tuple in transformers >= 4.7 (upstream issue #17/#29), so its
first element is used.  Both leave the computation unchanged.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    MIN_ROUNDS,
    Stats,
    add_common_args,
    alternate,
    checkpoint_package,
    median_time,
    ort_options,
    ratio,
    require,
    setup,
    shared_dir,
    target,
    upstream_dir,
    write_result,
)

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "scratch" / "bench_audio2face"
WAV = shared_dir() / "assets" / "media" / "audio" / "faceformer_test.wav"
UPSTREAM_COMMIT = "dfaea81"
TRANSFORMERS = "5.23.0"
sys.path.insert(0, str(ROOT))


def package() -> Path:
    """The full-size random-weight checkpoint converted by this tree's converters."""
    from facelib.models.convert.faceformer import build_package

    return checkpoint_package(
        SCRATCH / "faceformer_vocaset_full_random.pth",
        make_checkpoint,
        SCRATCH / "pkg",
        lambda ckpt, out: build_package({"checkpoint": ckpt}, out, dataset="vocaset"),
    )


def make_checkpoint(path: Path, seed: int = 0) -> None:
    """A random checkpoint in the released vocaset.pth layout, full wav2vec2-base sizes."""
    import torch

    from facelib.processing.faceformer import periodic_encoding

    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, std: float = 0.02) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    hidden, layers, ffn, conv, d, v3, subjects = 768, 12, 3072, 512, 64, 5023 * 3, 8
    sd: dict[str, torch.Tensor] = {"audio_encoder.masked_spec_embed": torch.rand(hidden, generator=g)}
    kernels = (10, 3, 3, 3, 3, 2, 2)
    for i, k in enumerate(kernels):
        fan_in = (1 if i == 0 else conv) * k
        sd[f"audio_encoder.feature_extractor.conv_layers.{i}.conv.weight"] = rnd(
            conv, 1 if i == 0 else conv, k, std=1 / math.sqrt(fan_in)
        )
    sd["audio_encoder.feature_extractor.conv_layers.0.layer_norm.weight"] = 1 + rnd(conv, std=0.1)
    sd["audio_encoder.feature_extractor.conv_layers.0.layer_norm.bias"] = rnd(conv, std=0.1)
    sd["audio_encoder.feature_projection.layer_norm.weight"] = 1 + rnd(conv, std=0.1)
    sd["audio_encoder.feature_projection.layer_norm.bias"] = rnd(conv, std=0.1)
    sd["audio_encoder.feature_projection.projection.weight"] = rnd(hidden, conv, std=1 / math.sqrt(conv))
    sd["audio_encoder.feature_projection.projection.bias"] = rnd(hidden)
    sd["audio_encoder.encoder.pos_conv_embed.conv.bias"] = rnd(hidden)
    sd["audio_encoder.encoder.pos_conv_embed.conv.weight_g"] = 1 + rnd(1, 1, 128, std=0.1)
    sd["audio_encoder.encoder.pos_conv_embed.conv.weight_v"] = rnd(hidden, hidden // 16, 128)
    sd["audio_encoder.encoder.layer_norm.weight"] = 1 + rnd(hidden, std=0.1)
    sd["audio_encoder.encoder.layer_norm.bias"] = rnd(hidden, std=0.1)
    for i in range(layers):
        p = f"audio_encoder.encoder.layers.{i}."
        for name in ("k_proj", "v_proj", "q_proj", "out_proj"):
            sd[p + f"attention.{name}.weight"] = rnd(hidden, hidden, std=1 / math.sqrt(hidden))
            sd[p + f"attention.{name}.bias"] = rnd(hidden)
        sd[p + "layer_norm.weight"] = 1 + rnd(hidden, std=0.1)
        sd[p + "layer_norm.bias"] = rnd(hidden, std=0.1)
        sd[p + "feed_forward.intermediate_dense.weight"] = rnd(ffn, hidden, std=1 / math.sqrt(hidden))
        sd[p + "feed_forward.intermediate_dense.bias"] = rnd(ffn)
        sd[p + "feed_forward.output_dense.weight"] = rnd(hidden, ffn, std=1 / math.sqrt(ffn))
        sd[p + "feed_forward.output_dense.bias"] = rnd(hidden)
        sd[p + "final_layer_norm.weight"] = 1 + rnd(hidden, std=0.1)
        sd[p + "final_layer_norm.bias"] = rnd(hidden, std=0.1)
    sd["audio_feature_map.weight"] = rnd(d, hidden, std=1 / math.sqrt(hidden))
    sd["audio_feature_map.bias"] = rnd(d)
    sd["vertice_map.weight"] = rnd(d, v3, std=1 / math.sqrt(v3))
    sd["vertice_map.bias"] = rnd(d)
    sd["PPE.pe"] = torch.from_numpy(periodic_encoding(630, d, 30))[None]
    p = "transformer_decoder.layers.0."
    for att in ("self_attn", "multihead_attn"):
        sd[p + f"{att}.in_proj_weight"] = rnd(3 * d, d, std=1 / math.sqrt(d))
        sd[p + f"{att}.in_proj_bias"] = rnd(3 * d)
        sd[p + f"{att}.out_proj.weight"] = rnd(d, d, std=1 / math.sqrt(d))
        sd[p + f"{att}.out_proj.bias"] = rnd(d)
    sd[p + "linear1.weight"] = rnd(2 * d, d, std=1 / math.sqrt(d))
    sd[p + "linear1.bias"] = rnd(2 * d)
    sd[p + "linear2.weight"] = rnd(d, 2 * d, std=1 / math.sqrt(2 * d))
    sd[p + "linear2.bias"] = rnd(d)
    for n in (1, 2, 3):
        sd[p + f"norm{n}.weight"] = 1 + rnd(d, std=0.1)
        sd[p + f"norm{n}.bias"] = rnd(d, std=0.1)
    sd["vertice_map_r.weight"] = rnd(v3, d, std=0.001)
    sd["vertice_map_r.bias"] = rnd(v3, std=0.0005)
    sd["obj_vector.weight"] = rnd(d, subjects, std=0.5)
    torch.save(sd, path)


def upstream_model(ckpt: Path, code: Path) -> object:
    import torch

    sys.path.insert(0, str(code))
    import transformers

    base_config = transformers.Wav2Vec2Config()  # base-960h architecture sizes
    base_config._attn_implementation = "eager"  # upstream sets output_attentions=True

    def offline(cls: type, *_: object, **__: object) -> object:
        return cls(base_config)

    transformers.Wav2Vec2Model.from_pretrained = classmethod(offline)  # type: ignore[method-assign, assignment]
    import faceformer as upstream  # type: ignore[import-not-found]

    args = argparse.Namespace(
        dataset="vocaset",
        feature_dim=64,
        vertice_dim=5023 * 3,
        period=30,
        device="cpu",
        train_subjects=" ".join(f"s{i}" for i in range(8)),
    )
    model = upstream.Faceformer(args)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    base = "audio_encoder.encoder.pos_conv_embed.conv."
    keys = model.state_dict().keys()
    if base + "parametrizations.weight.original0" in keys:
        state[base + "parametrizations.weight.original0"] = state.pop(base + "weight_g")
        state[base + "parametrizations.weight.original1"] = state.pop(base + "weight_v")
    missing, _ = model.load_state_dict(state, strict=False)
    assert not [k for k in missing if "masked_spec" not in k], missing
    projection = model.audio_encoder.feature_projection
    original = projection.forward
    projection.forward = lambda h: (lambda out: out[0] if isinstance(out, tuple) else out)(original(h))
    return model.eval()


def upstream_predict(model: object, wav: Path, subject: int = 0) -> np.ndarray:
    import librosa
    import torch

    from facelib.processing.faceformer import normalize_audio

    speech, _ = librosa.load(str(wav), sr=16000)
    values = normalize_audio(speech)  # = Wav2Vec2Processor(...).input_values (eps 1e-7)
    one_hot = torch.zeros(1, 8)
    one_hot[0, subject] = 1
    template = torch.zeros(1, 5023 * 3)
    with torch.no_grad():
        out = model.predict(torch.from_numpy(values)[None], template, one_hot)  # type: ignore[attr-defined]
    return out[0].numpy().reshape(-1, 5023, 3)


def loop_speech(seconds: float) -> np.ndarray:
    from facelib.io.audio import load_audio

    speech = load_audio(WAV)
    reps = math.ceil(seconds * 16000 / len(speech))
    return np.tile(speech, reps)[: int(seconds * 16000)]


def rss_child(package: str, wav: str) -> None:
    """Run in a fresh process: animate a long file, print JSON with time and peak RSS."""
    from facelib.tasks.audio2face import Audio2Face

    start = time.perf_counter()
    frames = 0
    checksum = 0.0
    with Audio2Face(package) as task:
        for frame in task.iter_frames(wav, 0, np.zeros((5023, 3), np.float32)):
            frames += 1
            checksum += float(frame[0, 0])
    # VmHWM: this process's peak resident set (ru_maxrss would include the parent's peak,
    # which Linux carries across execve)
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = [ln for ln in status if ln.startswith("VmHWM:")]
    peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"frames": frames, "seconds": time.perf_counter() - start, "peak_rss_mb": peak, "checksum": checksum}
        )
    )


def encoder_timer(task: Any, upstream: Any) -> dict[str, float]:
    """Accumulate the time spent in each side's audio encoder inside the timed calls."""
    spent = {"facelib": 0.0, "upstream": 0.0}

    def hook(role: str, session: Any) -> Any:
        if role == "audio_encoder":
            inner = session.run

            def run(*a: Any, **k: Any) -> Any:
                start = time.perf_counter()
                try:
                    return inner(*a, **k)
                finally:
                    spent["facelib"] += time.perf_counter() - start

            session.run = run
        return session

    task.session_hook = hook
    if upstream is not None:
        encoder = upstream.audio_encoder
        forward = encoder.forward

        def timed_forward(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return forward(*a, **k)
            finally:
                spent["upstream"] += time.perf_counter() - start

        encoder.forward = timed_forward
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    add_common_args(parser)
    parser.add_argument("--long-minutes", type=float, default=2.0, help="length of the memory check (all cores only)")
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    run = setup(args)
    require("transformers", TRANSFORMERS)
    import torch

    from facelib.io.audio import load_audio

    n = run.cores
    full = n == len(os.sched_getaffinity(0)) and n == (os.cpu_count() or n) and not args.quick
    torch.set_num_threads(n)
    ckpt = SCRATCH / "faceformer_vocaset_full_random.pth"
    t = time.perf_counter()
    pkg = package()
    convert_s = time.perf_counter() - t

    from facelib.tasks.audio2face import Audio2Face

    template = np.zeros((5023, 3), np.float32)
    wav = WAV
    if args.quick:  # 2 s of the clip
        import soundfile as sf

        wav = SCRATCH / "quick.wav"
        sf.write(wav, load_audio(WAV)[: 2 * 16000], 16000, subtype="PCM_16")
    ours_n = Audio2Face(pkg, backend="onnxruntime", backend_options=ort_options(n))
    ours_default = Audio2Face(pkg, backend="onnxruntime")
    model = upstream_model(ckpt, upstream_dir("FaceFormer"))
    spent = encoder_timer(ours_n, model)
    outputs: dict[str, np.ndarray] = {}
    enc: dict[str, list[float]] = {"facelib": [], "upstream": []}

    def with_encoder(side: str, call: Any) -> Any:
        def timed() -> None:
            spent[side] = 0.0
            outputs[side] = call()
            enc[side].append(spent[side])

        return timed

    up_name, n_name, d_name = f"upstream, {n} thread(s)", f"facelib, {n} thread(s)", "facelib defaults"
    stats = alternate(
        {
            up_name: with_encoder("upstream", lambda: upstream_predict(model, wav)),
            n_name: with_encoder("facelib", lambda: ours_n.predict(wav, 0, template).vertices),
            d_name: lambda: ours_default.predict(wav, 0, template),
        },
        args.rounds,
    )
    # the warm-up call also recorded an encoder time: drop it
    enc_stats = {side: Stats(values[1:]) for side, values in enc.items()}
    frames = len(outputs["facelib"])
    diff = float(np.abs(outputs["upstream"] - outputs["facelib"]).max())
    scale = float(np.abs(outputs["upstream"]).max())
    speedup = stats[up_name].median / stats[n_name].median

    def rest(total: Stats, part: Stats) -> str:
        per_round = sorted(a - b for a, b in zip(total.samples, part.samples))
        return f"{np.median(per_round):.2f} s ({per_round[0]:.2f}-{per_round[-1]:.2f})"

    lines = [
        f"FaceFormer vocaset layout, full-size random weights (wav2vec2-base sizes), `{wav.name}` "
        f"({frames} frames at 30 fps). Upstream: EvelynFan/FaceFormer @{UPSTREAM_COMMIT} `Faceformer.predict` "
        f"(torch {torch.__version__}, transformers {TRANSFORMERS}); each call loads, resamples and normalises the "
        "audio and predicts, on both sides.",
        "",
        "### End to end",
        "",
        "| implementation | seconds per file | speed-up (per-round range) |",
        "|---|---|---|",
        f"| {up_name} | {stats[up_name].fmt(1, 2)} | 1.00x |",
        f"| {n_name} | {stats[n_name].fmt(1, 2)} | {ratio(stats[up_name], stats[n_name])} |",
        f"| {d_name} | {stats[d_name].fmt(1, 2)} | {ratio(stats[up_name], stats[d_name])} |",
        "",
        target("Audio2Face fp32 (same cores)", speedup, 5.0),
        "",
        "Split, timed inside the same calls (median over rounds of the per-round difference): "
        f"facelib audio encoder {enc_stats['facelib'].fmt(1, 2)} s, everything else "
        f"{rest(stats[n_name], enc_stats['facelib'])}; upstream wav2vec2 encoder "
        f"{enc_stats['upstream'].fmt(1, 2)} s, everything else (O(T^2) autoregressive loop re-decoding "
        f"the whole prefix each frame) {rest(stats[up_name], enc_stats['upstream'])}.",
        "",
        f"Max abs difference facelib vs upstream: {diff:.2e} (largest upstream offset {scale:.2e}). "
        f"Conversion: {convert_s:.1f} s (0 when cached).",
    ]
    if full:
        lines += facelib_only(ours_default, pkg, template, args)
    ours_n.close()
    ours_default.close()
    write_result("audio2face", "Audio2Face (FaceFormer): facelib vs upstream", "\n".join(lines), run)
    return 0


def facelib_only(task: Any, pkg: Path, template: np.ndarray, args: argparse.Namespace) -> list[str]:
    """facelib-only figures (defaults, all cores): per-frame cost vs length, any-length accuracy, streaming, RSS."""
    lines = [
        "",
        "### facelib alone, defaults (median [IQR] (min-max) of 3 runs each, after a warm-up)",
        "",
        "| audio s | frames | seconds | ms / frame |",
        "|---|---|---|---|",
    ]
    for seconds in (10, 60):
        audio = loop_speech(seconds)
        frames = task.predict(audio, 0, template).num_frames
        st = median_time(lambda audio=audio: task.predict(audio, 0, template), 3)
        lines.append(f"| {seconds} | {frames} | {st.fmt(1, 2)} | {st.median / frames * 1000:.2f} |")

    from facelib.tasks.audio2face import Windowing

    audio = loop_speech(60.0)
    with Audio2FaceFor(pkg, Windowing(whole_seconds=1e9), None) as t:
        exact = t.predict(audio, 0, template).vertices
        nominal = whole_nominal(t, audio, template)
    with Audio2FaceFor(pkg, Windowing(whole_seconds=1e9), 600) as t:
        bounded = t.predict(audio, 0, template).vertices
    with Audio2FaceFor(pkg, Windowing(whole_seconds=0.0), None) as t:
        windowed = t.predict(audio, 0, template).vertices
    causal = task.predict(audio, 0, template, causal=True).vertices
    sc = float(np.abs(exact).max())
    rows = [
        ("decoder cache bounded to 600 frames", float(np.abs(bounded - exact).max())),
        ("encoder windows of 20 s + 2.5 s context each side", float(np.abs(windowed - exact).max())),
        (
            "causal / streaming (stream defaults: 0.5 s windows, 2 s past, 0.25 s look-ahead, running GroupNorm, "
            "cached CNN)",
            float(np.abs(causal - exact).max()),
        ),
        (
            "causal / streaming against the whole clip with the stream's 50/30 alignment (issue 19's goal)",
            float(np.abs(causal - nominal[: len(causal)]).max()),
        ),
    ]
    lines += [
        "",
        "#### Any-length accuracy (60 s of speech; reference: one whole encoder run, unbounded decoder cache)",
        "",
        "| variant | max abs diff | share of the largest vertex offset |",
        "|---|---|---|",
        *(f"| {name} | {v:.2e} | {v / sc:.2%} |" for name, v in rows),
    ]
    audio = loop_speech(6.0)
    latencies, first_audio = [], 0.0
    for _ in range(MIN_ROUNDS):
        stream = task.stream(0, template)
        fed = 0
        for i in range(0, len(audio), 320):
            fed += 320
            if stream.feed(audio[i : i + 320]):
                first_audio = fed / 16000
                break
        latencies.append(stream.first_frame_latency or float("nan"))
        stream.close()
    # steady-state window calls (after the first 5 s, whose windows are encoded whole): the default
    # (conv stack on new audio only) vs every window recomputed, alternated
    import attrs

    from facelib.tasks.audio2face import STREAM_WINDOWING

    audio = loop_speech(12.0)
    step = round(STREAM_WINDOWING.core_seconds * 16000)
    streams = {
        "cached CNN (default)": task.stream(0, template),
        "recomputed whole": task.stream(0, template, windowing=attrs.evolve(STREAM_WINDOWING, cache_cnn=False)),
    }
    calls: dict[str, list[float]] = {name: [] for name in streams}
    for i in range(0, len(audio), step):
        for name, stream in streams.items():  # A B A B ...: load hits both alike
            t0 = time.perf_counter()
            stream.feed(audio[i : i + step])
            if i >= 6 * 16000:
                calls[name].append(time.perf_counter() - t0)
    lines += [
        "",
        f"Streaming: first frame after {first_audio:.2f} s of audio (window core + look-ahead); compute latency "
        f"of the feed() call that produced it {Stats(latencies).fmt(1000, 0)} ms.  Each 0.5 s window after 6 s "
        "(2.75 s of audio through the encoder, then its frames through the decoder), alternated: "
        + "; ".join(f"{name} {Stats(v).fmt(1000, 0)} ms" for name, v in calls.items())
        + ".",
    ]
    if args.long_minutes > 0:
        import soundfile as sf

        long_wav = SCRATCH / "long_speech.wav"
        sf.write(long_wav, loop_speech(args.long_minutes * 60), 16000, subtype="PCM_16")
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(pkg), str(long_wav)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ).stdout
        long = json.loads(out.strip().splitlines()[-1])
        long_wav.unlink()
        lines += [
            "",
            f"{args.long_minutes:g} minutes of speech in a fresh process, frames consumed one by one: "
            f"{long['frames']} frames in {long['seconds']:.1f} s "
            f"({long['seconds'] / long['frames'] * 1000:.2f} ms/frame); peak RSS {long['peak_rss_mb']:.0f} MB.",
        ]
    return lines


def whole_nominal(task: Any, audio: np.ndarray, template: np.ndarray) -> np.ndarray:
    """The whole-clip result with a stream's frame alignment (vocaset 50 -> 30 fps at the nominal
    ratio, not ``align_corners`` over the clip, whose length a stream cannot know): one encoder
    run over the clip, unbounded decoder cache.  (T, V, 3) vertices."""
    from facelib.processing import faceformer as ff

    cnn = ff.cnn_frames(len(audio))
    pos = np.minimum(ff.nominal_positions(0, ff.hooked_length(cnn, task.dataset), task.dataset), cnn - 1)
    values = ff.normalize_audio(audio, eps=task.norm_eps)
    feats = task._session("audio_encoder").run({"input_values": values[None], "positions": pos.astype(np.float32)})
    decoder = task._decoder(task.style(0), None)
    offsets = decoder.feed(np.asarray(feats["features"][0], np.float32))
    return np.stack(offsets).reshape(len(offsets), -1, 3) + template


def Audio2FaceFor(pkg: Path, windowing: Any, max_context: int | None) -> Any:
    from facelib.tasks.audio2face import Audio2Face

    return Audio2Face(pkg, windowing=windowing, max_context=max_context)


if __name__ == "__main__":
    raise SystemExit(main())
