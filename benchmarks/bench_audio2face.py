"""Audio2Face benchmark: facelib vs upstream FaceFormer ``predict`` on the same machine, same run.

Run from the project root::

    python benchmarks/bench_audio2face.py            # writes benchmarks/results/audio2face.md

What it does (all scratch files under ``scratch/bench_audio2face``, git-ignored):

1. builds a FULL-SIZE random FaceFormer checkpoint in the released ``vocaset.pth`` layout
   (wav2vec2-base-960h sizes: width 768, 12 layers, 12 heads, FFN 3072, CNN 512 channels,
   positional conv 128/16 with legacy ``weight_g``/``weight_v``; feature_dim 64; V = 5023;
   8 subjects) with numpy/torch at run time;
2. converts it with ``facelib.models.convert.faceformer``;
3. runs upstream (EvelynFan/FaceFormer @dfaea81 fetched into the scratch dir, ``transformers``
   installed into a scratch target dir, never into the project venv) and facelib on
   ``../shared/assets/media/audio/faceformer_test.wav`` (11.5 s, 44.1 kHz), checks that both agree;
4. times facelib per frame from 10 s to 60 s of (looped) speech, the first streamed frame, and
   the peak RSS of a 10-minute file in a fresh process.

Upstream needs two shims to run offline with today's transformers: ``from_pretrained`` is
replaced by the base-960h config (weights come from our checkpoint), and
``feature_projection`` returns a tuple in transformers >= 4.7 (upstream issue #17/#29), so its
first element is used.  Both leave the computation unchanged.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACELIB_SHARED", ROOT.parent / "shared"))
SCRATCH = ROOT / "scratch" / "bench_audio2face"
WAV = SHARED / "assets" / "media" / "audio" / "faceformer_test.wav"
UPSTREAM_REPO = "EvelynFan/FaceFormer"
UPSTREAM_COMMIT = "dfaea81"
sys.path.insert(0, str(ROOT))


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


def fetch_upstream(target: Path) -> Path:
    """Upstream faceformer.py / wav2vec.py at the pinned commit (git, from GitHub or a mirror)."""
    if (target / "faceformer.py").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    mirror = Path(os.environ.get("FACEFORMER_MIRROR", "/work/.mirror/EvelynFan+FaceFormer/repo"))
    if not mirror.exists():
        mirror = target / "git"
        subprocess.run(["git", "clone", "--quiet", f"https://github.com/{UPSTREAM_REPO}", str(mirror)], check=True)
    for name in ("faceformer.py", "wav2vec.py"):
        text = subprocess.run(
            [
                "git",
                "--git-dir",
                str(mirror if mirror.name != "git" else mirror / ".git"),
                "show",
                f"{UPSTREAM_COMMIT}:{name}",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (target / name).write_text(text)
    return target


def ensure_transformers(site: Path) -> None:
    """transformers into a scratch target dir (appended to sys.path: the venv's numpy/torch win)."""
    if not (site / "transformers").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(site), "transformers"], check=True
        )
    sys.path.append(str(site))


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


def upstream_predict(model: object, wav: Path, subject: int = 0) -> tuple[np.ndarray, float]:
    import librosa
    import torch

    from facelib.processing.faceformer import normalize_audio

    start = time.perf_counter()
    speech, _ = librosa.load(str(wav), sr=16000)
    values = normalize_audio(speech)  # = Wav2Vec2Processor(...).input_values (eps 1e-7)
    one_hot = torch.zeros(1, 8)
    one_hot[0, subject] = 1
    template = torch.zeros(1, 5023 * 3)
    with torch.no_grad():
        out = model.predict(torch.from_numpy(values)[None], template, one_hot)  # type: ignore[attr-defined]
    return out[0].numpy().reshape(-1, 5023, 3), time.perf_counter() - start


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument("--skip-upstream", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing repeats (best is reported)")
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    import torch

    torch.set_num_threads(2)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    facts: dict[str, object] = {}

    def log(text: str) -> None:
        print(text, flush=True)

    ckpt = SCRATCH / "faceformer_vocaset_full_random.pth"
    if not ckpt.is_file():
        log("making a full-size random checkpoint ...")
        make_checkpoint(ckpt)
    pkg = SCRATCH / "pkg"
    t = time.perf_counter()
    if not (pkg / "facelib.json").is_file():
        from facelib.models.convert.faceformer import build_package

        build_package({"checkpoint": ckpt}, pkg, dataset="vocaset")
    facts["convert_s"] = time.perf_counter() - t
    log(f"converted in {facts['convert_s']:.1f} s")

    from facelib.tasks.audio2face import Audio2Face

    template = np.zeros((5023, 3), np.float32)
    task = Audio2Face(pkg)
    task.predict(loop_speech(2.0), 0, template)  # warm-up (session creation)
    model = None
    if not args.skip_upstream:
        ensure_transformers(SCRATCH / "site")
        code = fetch_upstream(SCRATCH / "upstream")
        model = upstream_model(ckpt, code)
        upstream_predict(model, WAV)  # warm-up
    # interleaved repeats, best of each: the machine is shared, so load comes and goes
    ours_times, up_times = [], []
    ours = up = None
    from facelib.io.audio import load_audio
    from facelib.processing.faceformer import cnn_frames, hook_positions, normalize_audio

    values = normalize_audio(load_audio(WAV))
    positions = hook_positions(cnn_frames(len(values)), "vocaset").astype(np.float32)
    feeds = {"input_values": values[None], "positions": positions}
    enc_times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        ours = task.predict(WAV, 0, template).vertices
        ours_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        task._session("audio_encoder").run(feeds)
        enc_times.append(time.perf_counter() - t)
        if model is not None:
            up, up_time = upstream_predict(model, WAV)
            up_times.append(up_time)
    assert ours is not None
    facts["ours_e2e_s"] = min(ours_times)
    log(f"facelib end to end {facts['ours_e2e_s']:.2f} s for {len(ours)} frames (runs: {ours_times})")
    facts["ours_encoder_s"] = min(enc_times)
    if model is not None and up is not None:
        import torch as _torch

        facts["upstream_e2e_s"] = min(up_times)
        facts["speedup"] = facts["upstream_e2e_s"] / facts["ours_e2e_s"]  # type: ignore[operator]
        facts["max_abs_diff_vs_upstream"] = float(np.abs(up - ours).max())
        facts["motion_scale"] = float(np.abs(up).max())
        tensor = _torch.from_numpy(values)[None]
        up_enc = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            with _torch.no_grad():
                model.audio_encoder(tensor, "vocaset")  # type: ignore[attr-defined]
            up_enc.append(time.perf_counter() - t)
        facts["upstream_encoder_s"] = min(up_enc)
        log(
            f"upstream {facts['upstream_e2e_s']:.2f} s (runs {up_times}); speed-up {facts['speedup']:.2f}x; "
            f"max |diff| {facts['max_abs_diff_vs_upstream']:.2e}; encoders: up {facts['upstream_encoder_s']:.2f} s, "
            f"facelib {facts['ours_encoder_s']:.2f} s"
        )

    per_frame = []
    for seconds in (10, 20, 30, 45, 60):
        audio = loop_speech(seconds)
        runs = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            res = task.predict(audio, 0, template)
            runs.append(time.perf_counter() - t)
        el = min(runs)
        per_frame.append((seconds, res.num_frames, el, el / res.num_frames * 1000))
        log(f"{seconds:>3} s audio: {res.num_frames} frames, {el:.2f} s, {el / res.num_frames * 1000:.2f} ms/frame")

    # accuracy of the any-length machinery on 60 s of speech (whole run still fits in memory)
    from facelib.tasks.audio2face import Windowing

    audio = loop_speech(60.0)
    with Audio2Face(pkg, windowing=Windowing(whole_seconds=1e9), max_context=None) as exact_task:
        exact = exact_task.predict(audio, 0, template).vertices
    with Audio2Face(pkg, windowing=Windowing(whole_seconds=1e9), max_context=600) as bounded_task:
        bounded = bounded_task.predict(audio, 0, template).vertices
    with Audio2Face(pkg, windowing=Windowing(whole_seconds=0.0), max_context=None) as windowed_task:
        windowed = windowed_task.predict(audio, 0, template).vertices
    causal = task.predict(audio, 0, template, causal=True).vertices
    assert exact is not None and bounded is not None and windowed is not None and causal is not None
    scale = float(np.abs(exact).max())
    facts["acc_scale"] = scale
    facts["acc_bounded"] = float(np.abs(bounded - exact).max())
    facts["acc_windowed"] = float(np.abs(windowed - exact).max())
    facts["acc_windowed_mean"] = float(np.abs(windowed - exact).mean())
    facts["acc_causal"] = float(np.abs(causal - exact).max())
    log(
        f"60 s accuracy vs whole+unbounded: cache600 {facts['acc_bounded']:.2e}, "
        f"windows {facts['acc_windowed']:.2e}, causal {facts['acc_causal']:.2e} (scale {scale:.2e})"
    )

    # streaming: 20 ms chunks, real-time arrival not simulated (compute latency measured per call)
    audio = loop_speech(6.0)
    latencies = []
    first_audio = None
    for _ in range(args.repeats):
        stream = task.stream(0, template)
        chunk = 320
        fed = 0
        for i in range(0, len(audio), chunk):
            got = stream.feed(audio[i : i + chunk])
            fed += chunk
            if got:
                first_audio = fed / 16000
                break
        latencies.append((stream.first_frame_latency or float("nan")) * 1000)
        stream.close()
    facts["stream_first_frame_compute_ms"] = min(latencies)
    facts["stream_first_frame_runs_ms"] = [round(x) for x in latencies]
    facts["stream_first_frame_audio_s"] = first_audio
    log(f"stream: first frame after {first_audio:.2f} s of audio, compute {latencies} ms")

    long_wav = SCRATCH / "long_speech.wav"
    if args.long_minutes > 0:
        import soundfile as sf

        sf.write(long_wav, loop_speech(args.long_minutes * 60), 16000, subtype="PCM_16")
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(pkg), str(long_wav)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ).stdout
        long = json.loads(out.strip().splitlines()[-1])
        facts["long"] = long
        log(
            f"{args.long_minutes:g} min: {long['frames']} frames in {long['seconds']:.1f} s, peak RSS {long['peak_rss_mb']:.0f} MB"  # noqa: E501
        )
        long_wav.unlink()

    import onnxruntime

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )
    lines += [
        "# Audio2Face benchmark (FaceFormer, vocaset layout, full-size random weights)",
        "",
        f"Generated by `python benchmarks/bench_audio2face.py` on {now}; {cpu}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, torch {torch.__version__} (2 threads), onnxruntime {onnxruntime.__version__}.",  # noqa: E501
        "",
        "## End to end on faceformer_test.wav (11.5 s, 44.1 kHz -> 345 frames at 30 fps)",
        "",
        "| | seconds | speed-up |",
        "|---|---|---|",
    ]
    if "upstream_e2e_s" in facts:
        lines.append(
            f"| upstream `Faceformer.predict` (load + normalise + predict) | {facts['upstream_e2e_s']:.2f} | 1.00x |"
        )
    lines.append(
        f"| facelib `Audio2Face.predict(path)` (onnxruntime CPU) | {facts['ours_e2e_s']:.2f} | {facts.get('speedup', float('nan')):.2f}x |"  # noqa: E501
    )
    lines += [
        "",
        f"facelib split: audio encoder session {facts['ours_encoder_s']:.2f} s, everything else "
        f"(audio decode + resample, 345 decoder steps) {facts['ours_e2e_s'] - facts['ours_encoder_s']:.2f} s.",
    ]  # type: ignore[operator]
    if "upstream_encoder_s" in facts:
        lines += [
            "",
            f"Upstream split: wav2vec2 encoder alone {facts['upstream_encoder_s']:.2f} s, the rest "
            f"(O(T^2) autoregressive loop re-decoding the whole prefix each frame) "
            f"{facts['upstream_e2e_s'] - facts['upstream_encoder_s']:.2f} s.",
        ]  # type: ignore[operator]
    if "max_abs_diff_vs_upstream" in facts:
        lines += [
            "",
            f"Max abs difference facelib vs upstream on this run: {facts['max_abs_diff_vs_upstream']:.2e} "
            f"(largest upstream offset {facts['motion_scale']:.2e}).",
        ]
    lines += [
        "",
        f"Load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine; "
        "both sides ran under the same load, so ratios are more reliable than absolute times).",
    ]
    lines += [
        "",
        "## Time per frame vs length (looped speech; upstream stops at 600 frames)",
        "",
        f"| audio s | frames | total s (best of {args.repeats}) | ms / frame |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s} | {n} | {e:.2f} | {m:.2f} |" for s, n, e, m in per_frame]
    if "acc_scale" in facts:
        sc = float(facts["acc_scale"])  # type: ignore[arg-type]
        rows = [
            ("decoder cache bounded to 600 frames", facts["acc_bounded"]),
            ("encoder windows of 20 s + 2.5 s context each side", facts["acc_windowed"]),
            ("causal / streaming (stream defaults: 0.5 s windows, 2 s past, 0.5 s look-ahead)", facts["acc_causal"]),
        ]
        lines += [
            "",
            "## Any-length accuracy (60 s of speech, 1799 frames)",
            "",
            "Reference: one whole encoder run and an unbounded decoder cache on the same 60 s.",
            "",
            "| variant | max abs diff | share of the largest vertex offset |",
            "|---|---|---|",
        ]
        lines += [f"| {name} | {float(v):.2e} | {float(v) / sc:.2%} |" for name, v in rows]  # type: ignore[arg-type]
        lines.append(f"\nMean abs difference of the windowed run: {facts['acc_windowed_mean']:.1e}.")
    lines += [
        "",
        "## Streaming",
        "",
        f"First frame after {facts['stream_first_frame_audio_s']:.2f} s of audio (window core + look-ahead), "
        f"compute latency of the feed() call that produced it: {facts['stream_first_frame_compute_ms']:.0f} ms "
        f"(best of {args.repeats}; all runs {facts['stream_first_frame_runs_ms']} ms).",
    ]
    if "long" in facts:
        long = facts["long"]
        lines += [
            "",
            f"## {args.long_minutes:g} minutes of speech (fresh process, frames consumed one by one)",
            "",
            f"{long['frames']} frames in {long['seconds']:.1f} s ({long['seconds'] / long['frames'] * 1000:.2f} ms/frame); "  # type: ignore[index]  # noqa: E501
            f"peak RSS {long['peak_rss_mb']:.0f} MB.",
        ]  # type: ignore[index]
    out_md = ROOT / "benchmarks" / "results" / "audio2face.md"
    out_md.write_text("\n".join(lines) + "\n")
    log(f"wrote {out_md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
