"""Reduced-precision variants of model packages, made with onnxruntime's own quantization tools.

``quantize_package(package, "int8", output, calibration)`` writes a copy of a package whose ONNX
files are quantized; the card records ``metadata["precision"]`` and the new hashes, so every
task opens the variant as it opens the original.  Two methods, chosen per file:

* **dynamic** (``onnxruntime.quantization.quantize_dynamic``: int8 weights, activations
  quantized per call from their observed range) for transformer-style graphs -- MatMul-heavy
  files with no convolutions to speak of, e.g. the FaceFormer decoder step.  It needs no
  calibration data;
* **static Q/DQ** (``quantize_static`` in QDQ format, per-channel int8 weights, MinMax
  calibration) for convolutional files: activation ranges come from real inputs recorded while
  the float32 package runs the caller's samples (:func:`record_feeds`).

Statically, only ``Conv`` / ``ConvTranspose`` inputs are quantized: adding FSA-Net's capsule
MatMuls moved one AFLW2000 face by 26 degrees instead of 2.4 (held-out faces, 3 calibration
faces).  The TensorRT plugin makes its Q/DQ files with :func:`quantize_qdq` too, with
symmetric activations and its own op list.

``bf16`` is a precision word the accelerator plugins take (TensorRT builds it from the same
float32 package); ONNX Runtime's CPU provider has no bfloat16 Conv/MatMul kernels, so asking
for it here raises :class:`~facelib.errors.InputError` naming int8 instead.

Which files are quantized, and how, is decided per task and role from measurements
(:data:`MEASURED`; alternating A/B timing of each file on recorded real inputs, ONNX Runtime 1.32
on a 2-core AVX512-VNNI EPYC): a file whose int8 form ran slower than float32, or lost too much
accuracy, stays float32 and the card says so with the figures
(``metadata["quantization"]`` and ``metadata["quantization_measured"]``).  Files of packages not
in the table get the method their graph suggests (:func:`method_for`).  ``roles=`` quantizes
the named files even against the table (the card then says it was forced).

How much accuracy each variant costs is measured against float32 on real data by
``facelib check TASK --precision int8`` (:mod:`facelib.tools.precision_check`), the tests
(tests/test_precision.py) and ``benchmarks/bench_precision.py``; docs/precision.md has the table.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.errors import BackendError, InputError

#: Precision words every task and backend understands (a backend may support only some).
PRECISIONS = ("fp32", "int8", "bf16")
#: Ops whose inputs static quantization quantizes by default (the rest stay in float).
STATIC_OPS = ("Conv", "ConvTranspose")

Feeds = Mapping[str, np.ndarray]


class PrecisionWarning(UserWarning):
    """A reduced-precision variant quantizes fewer files than asked, or none (the card says why)."""


@attrs.frozen
class Choice:
    """How one file (role) of one task is made int8, and what was measured to decide it.

    ``method``: ``"static"`` (Q/DQ, calibrated), ``"dynamic"`` (int8 weights, activations per
    call) or ``"fp32"`` (left as it is).  ``speed``: int8 time / float32 time inverted (above 1
    is faster), median of alternating rounds on that file alone; ``error``: max |int8 - fp32|
    over the file's outputs on held-out real inputs, in the outputs' units.  ``exclude_ends``:
    leave the first and last convolution in float (static only).
    """

    method: str
    speed: float
    error: float
    note: str
    exclude_ends: bool = False

    def describe(self) -> str:
        verb = "kept fp32" if self.method == "fp32" else f"{self.method} int8"
        return f"{verb}: int8 measured {self.speed:.2f}x fp32, max output error {self.error:.3g} ({self.note})"


#: Measured per (card task, role); see docs/precision.md.  2-core AMD EPYC with AVX512-VNNI,
#: ONNX Runtime 1.32, 2 intra-op threads, each file alone on inputs recorded from real media,
#: >= 5 alternating rounds, 2026-12-01 (machine under load: ratios, not absolute times).
MEASURED: dict[tuple[str, str], Choice] = {
    # FSA-Net: 64x64 crops, 16-channel convolutions; every int8 form ran slower
    # (QDQ per-channel 0.43x, per-tensor 0.74x, QOperator 0.36x, reduce_range 0.66x, dynamic
    # ConvInteger 0.27x at batch 1; 0.14-0.58x at batch 16) and moved yaw/pitch/roll by 4.7-9.7 deg
    **{
        ("head_pose", role): Choice("fp32", 0.74, 4.71, "best of QDQ/QOperator/per-tensor/dynamic; all slower")
        for role in ("ensemble", "capsule", "var_capsule", "noS_capsule")
    },
    # MediaPipe Face Landmarker: depthwise convolutions with PRelu between them; Q/DQ cannot fuse
    # across PRelu, so every layer quantizes and dequantizes (0.32-0.45x, landmarks off by 21-53 px)
    ("blendshapes", "detector"): Choice("fp32", 0.05, 21.5, "QDQ/QOperator 0.03-0.05x"),
    ("blendshapes", "landmarks"): Choice("fp32", 0.45, 48.3, "QDQ 0.32x, QOperator 0.45x, dynamic no-op"),
    ("blendshapes", "blendshapes"): Choice(
        "fp32", 1.44, 0.118, "QDQ 1.44x but blendshape weights off by up to 0.12 of [0, 1]; 1/5 of a frame"
    ),
    # FOMM: the generator holds ~80% of the FLOPs in wide 3x3 convolutions -- int8 pays off there
    ("motion_transfer", "generator"): Choice(
        "static", 2.28, 0.0141, "QDQ per-channel; per-tensor 2.09x, QOperator 2.03x"
    ),
    ("motion_transfer", "source_encoder"): Choice(
        "static", 1.47, 0.00298, "QDQ, first and last convolution in float (all: 1.04x)", exclude_ends=True
    ),
    ("motion_transfer", "kp_detector"): Choice("fp32", 0.97, 0.00201, "QDQ 0.53x, QOperator 0.70x, without ends 0.97x"),
    # FaceFormer: wav2vec2 encoder and the decoder step are MatMul-dominated
    # (the conv feature extractor: static Q/DQ 0.82x, with dynamic MatMul 1.31x; ConvInteger 0.42x;
    # MatMulNBits weight-only 8-bit 0.97x, 4-bit 0.88x; ORT transformer fusion + dynamic 0.98x --
    # none beats dynamic MatMul alone)
    ("audio2face", "audio_encoder"): Choice(
        "dynamic",
        1.25,
        0.109,
        "MatMul int8 per-channel, 1.14-1.64x in four runs; per-tensor 1.09x; static MatMul QDQ 0.97x, QOperator 1.27x",
    ),
    ("audio2face", "decoder_step"): Choice("dynamic", 1.34, 0.0242, "Gemm/MatMul int8 per-channel"),
    # the streaming encoder's two halves (the same weights as audio_encoder, split after the conv
    # stack), measured 2026-12-02 on 1 thread, 9 alternated rounds, full-size random weights:
    # the conv stack on a stream's 0.5 s of new audio (calibrated on faceformer_test, held-out
    # jfk), the rest on 2.75 s windows of real speech
    ("audio2face", "audio_cnn_stream"): Choice(
        "fp32", 0.90, 0.132, "static QDQ per-channel 0.90x, conv outputs up to 0.25 off by 0.13"
    ),
    ("audio2face", "audio_context_stream"): Choice(
        "dynamic", 2.48, 0.133, "MatMul int8 per-channel; streamed vertices 4.1% of the largest offset from fp32"
    ),
}


#: Changes whenever :data:`MEASURED` does: cached variants made under another plan are remade.
PLAN_VERSION = "2026-12-02"


def plan_for(card: Any, roles: Sequence[str] | None = None) -> dict[str, Choice | str]:
    """The method of each ONNX role of a package card: a measured :class:`Choice`, or a method
    name from the graph (``"static"``/``"dynamic"``, for packages :data:`MEASURED` does not
    know).  ``roles`` forces those roles to be quantized (the others stay float32)."""
    plan: dict[str, Choice | str] = {}
    for role, item in card.files.items():
        if not item.path.endswith(".onnx"):
            continue
        measured = MEASURED.get((card.task, role))
        if roles is not None:
            if role not in roles:
                plan[role] = "fp32"
            elif measured is not None and measured.method == "fp32":
                plan[role] = "forced"
            else:
                plan[role] = measured if measured is not None else ""
            continue
        plan[role] = measured if measured is not None else ""
    return plan


def ensure_ort_tools() -> None:
    """Put ``onnxruntime/transformers`` on sys.path, as its ``__init__`` does on first import.

    Its modules import each other by bare name (``from fusion_utils import ...``, also reached
    from ``onnxruntime.quantization``); when sys.path was reset after that first import, the
    next module of it would fail to import.
    """
    import onnxruntime.transformers

    folder = os.path.dirname(onnxruntime.transformers.__file__)
    if folder not in sys.path:
        sys.path.append(folder)


def check_precision(precision: str, backend: str = "onnxruntime") -> str:
    """``precision`` if ONNX Runtime on CPU can run it; a typed error naming the choices otherwise."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and backend == "onnxruntime":
        raise InputError(
            "bf16 needs an accelerator backend (e.g. --backend tensorrt --backend-option precision=bf16): "
            "ONNX Runtime's CPU provider has no bfloat16 Conv/MatMul kernels; use precision='int8' on CPU"
        )
    return precision


class _Reader:
    """A ``CalibrationDataReader`` over recorded feeds (one dict per call, then None)."""

    def __init__(self, samples: Sequence[Feeds], names: Sequence[str]) -> None:
        self._samples, self._names = samples, list(names)
        self._iter: Iterator[Feeds] = iter(samples)

    def get_next(self) -> dict[str, np.ndarray] | None:
        sample = next(self._iter, None)
        if sample is None:
            return None
        missing = [n for n in self._names if n not in sample]
        if missing:
            raise InputError(f"calibration sample lacks inputs {missing}")
        return {n: np.ascontiguousarray(sample[n]) for n in self._names}

    def rewind(self) -> None:
        self._iter = iter(self._samples)


def _graph_inputs(source: Path) -> list[str]:
    import onnx

    model = onnx.load(os.fspath(source), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [v.name for v in model.graph.input if v.name not in initializers]


def quantize_qdq(
    source: Path,
    target: Path,
    samples: Sequence[Feeds],
    *,
    symmetric: bool = False,
    per_channel: bool = True,
    op_types: Sequence[str] = STATIC_OPS,
    exclude_ends: bool = False,
) -> Path:
    """Static Q/DQ int8 copy of ``source`` calibrated on ``samples`` (real inputs), at ``target``.

    ``symmetric``: activations with zero point 0 (TensorRT needs it); otherwise asymmetric
    activations, which keep more of the range of post-ReLU tensors on CPU.  ``exclude_ends``:
    the first and the last node of ``op_types`` stay in float (their input/output ranges are
    the widest).
    """
    ensure_ort_tools()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if not samples:
        raise InputError(
            f"static int8 quantization of {source.name} needs calibration inputs from real data (images, video): "
            "--calibrate MEDIA on the command line, calibrate=... in Python"
        )

    class Reader(_Reader, CalibrationDataReader):
        pass

    exclude: list[str] = []
    if exclude_ends:
        import onnx

        nodes = [
            n.name for n in onnx.load(os.fspath(source), load_external_data=False).graph.node if n.op_type in op_types
        ]
        exclude = [nodes[0], nodes[-1]] if len(nodes) > 2 else []

    try:
        quantize_static(
            os.fspath(source),
            os.fspath(target),
            Reader(samples, _graph_inputs(source)),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=list(op_types),
            nodes_to_exclude=exclude,
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
        )
    except InputError:
        raise
    except Exception as exc:
        raise BackendError(f"could not quantize {source.name} to int8 Q/DQ: {exc}") from exc
    return target


def quantize_dynamic_int8(source: Path, target: Path, *, per_channel: bool = True) -> Path:
    """Dynamic int8 copy of ``source`` (int8 MatMul/Gemm weights, activations quantized per call)."""
    ensure_ort_tools()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        quantize_dynamic(
            os.fspath(source),
            os.fspath(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
    except Exception as exc:
        raise BackendError(f"could not quantize {source.name} to dynamic int8: {exc}") from exc
    return target


def method_for(source: Path) -> str:
    """``"dynamic"`` for MatMul-dominated graphs (transformers), ``"static"`` for convolutional ones."""
    import onnx

    ops = [n.op_type for n in onnx.load(os.fspath(source), load_external_data=False).graph.node]
    convs = sum(op in ("Conv", "ConvTranspose") for op in ops)
    matmuls = sum(op in ("MatMul", "Gemm") for op in ops)
    return "static" if convs > matmuls else "dynamic"


def record_feeds(task: Any, run: Callable[[], object], limit: int = 64) -> dict[str, list[dict[str, np.ndarray]]]:
    """Every session input ``task`` sees while ``run()`` runs, per role (at most ``limit`` each).

    ``task`` is a :class:`facelib.tasks.base.Task` (sessions it opens later are wrapped through
    its ``session_hook``; ones already open are wrapped in place).
    """
    recorded: dict[str, list[dict[str, np.ndarray]]] = {}

    def wrap(role: str, session: Any) -> Any:
        inner = session.run

        def run_and_record(feeds: Feeds, *args: Any, **kwargs: Any) -> Any:
            bucket = recorded.setdefault(role, [])
            if len(bucket) < limit:
                bucket.append({k: np.array(v, copy=True) for k, v in feeds.items()})
            return inner(feeds, *args, **kwargs)

        session.run = run_and_record
        return session

    previous = task.session_hook
    opened = dict(task._sessions)
    task._sessions.clear()  # re-open through the hook, so existing sessions are recorded too
    task.session_hook = wrap
    try:
        run()
    finally:
        for session in task._sessions.values():
            session.__dict__.pop("run", None)
        task._sessions.clear()
        task._sessions.update(opened)
        task.session_hook = previous
    return recorded


def quantize_package(
    package: str | os.PathLike[str] | Any,
    precision: str,
    output: str | os.PathLike[str],
    calibration: Mapping[str, Sequence[Feeds]] | None = None,
    roles: Sequence[str] | None = None,
) -> Path:
    """Write the ``precision`` variant of ``package`` to ``output`` (complete, or not at all).

    Each file gets the method :func:`plan_for` picks (measured per task and role; files whose
    int8 form was slower or inaccurate stay float32, with the reason in the card).
    ``calibration`` maps roles to recorded inputs (:func:`record_feeds`); files quantized
    statically need theirs (with calibration given, a convolutional file the task never ran
    while calibrating stays float32 and the card says so).  ``roles`` quantizes exactly those
    files, even ones measured slower (the card says "forced").  When no file ends up quantized
    a :class:`PrecisionWarning` says so.  Returns ``output``.
    """
    from facelib.models.package import ModelPackage, sha256_file

    check_precision(precision)
    pkg = package if isinstance(package, ModelPackage) else ModelPackage.load(Path(package))
    target = Path(output).expanduser()
    if precision == "fp32":
        raise InputError("precision 'fp32' is the package itself; nothing to quantize")
    unknown = sorted(set(roles or ()) - set(pkg.card.files))
    if unknown:
        raise InputError(f"{pkg.card.name} has no files {unknown}; its roles are {sorted(pkg.card.files)}")
    plan = plan_for(pkg.card, roles)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(pkg.root, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".facelib-cache"))
        files = dict(pkg.card.files)
        methods: dict[str, str] = {}
        measured: dict[str, dict[str, float | str]] = {}
        for role, choice in plan.items():
            item, source = files[role], pkg.path(role)
            if isinstance(choice, Choice):
                measured[role] = {"method": choice.method, "speed_vs_fp32": choice.speed, "max_error": choice.error}
                if choice.method == "fp32":
                    methods[role] = f"fp32 ({choice.describe()})"
                    continue
                method, ends = choice.method, choice.exclude_ends
            elif choice == "fp32":
                methods[role] = "fp32 (not among the roles asked for)"
                continue
            else:
                method, ends = method_for(source), False
            quantized = work / item.path
            if method == "static" and calibration is not None and role not in calibration:
                methods[role] = "fp32 (not run while calibrating)"
                continue
            if method == "static":
                quantize_qdq(source, quantized, list((calibration or {}).get(role, ())), exclude_ends=ends)
            else:
                quantize_dynamic_int8(source, quantized)
            methods[role] = method + (" (forced: measured slower than fp32)" if choice == "forced" else "")
            if item.sha256:
                files[role] = attrs.evolve(item, sha256=sha256_file(quantized))
        metadata = {
            **pkg.card.metadata,
            "precision": precision,
            "quantization": methods,
            "quantization_plan": PLAN_VERSION,
        }
        if measured:
            metadata["quantization_measured"] = measured
        card = attrs.evolve(pkg.card, files=files, metadata=metadata)
        card.write(work)
        for leftover in work.glob("*-inferred.onnx"):
            leftover.unlink()
        from facelib.io.atomic import replace_directory

        replace_directory(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    kept = [r for r, m in methods.items() if m.startswith("fp32")]
    if len(kept) == len(methods):
        warnings.warn(
            f"{pkg.card.name}: no file was quantized to {precision} -- on this CPU it would be slower or inaccurate "
            f"({'; '.join(f'{r}: {m}' for r, m in methods.items())}); the variant runs float32",
            PrecisionWarning,
            stacklevel=2,
        )
    return target


def quantized_roles(card: Any) -> list[str]:
    """The roles of a variant's card whose files were quantized (from ``metadata["quantization"]``)."""
    methods = card.metadata.get("quantization", {})
    return [role for role, method in methods.items() if not str(method).startswith("fp32")]


def precision_variant(
    task_cls: Any,
    package: Any,
    precision: str,
    calibrate: Callable[[Any], object] | None = None,
    **task_options: Any,
) -> Any:
    """The ``precision`` variant of ``package`` for ``task_cls``, made once and cached.

    ``calibrate(task)`` runs the float32 task on the caller's real inputs (images, audio, a
    clip) so that convolutional files get their activation ranges from them; files that need
    none (dynamic quantization) ignore it.  The variant lives in the package's
    ``.facelib-cache/precision-<precision>`` (or the user cache when the package is read-only);
    delete it to recalibrate.
    """
    from facelib.models.package import ModelPackage

    check_precision(precision)
    pkg = package if isinstance(package, ModelPackage) else ModelPackage.load(package)
    if precision == "fp32":
        return pkg
    if os.access(pkg.root, os.W_OK):
        target = pkg.root / ".facelib-cache" / f"precision-{precision}"
    else:
        from facelib.models.cache import cache_dir

        target = cache_dir() / "precision" / pkg.card.name / precision
    if (target / "facelib.json").is_file():
        cached = ModelPackage.load(target)
        if cached.card.metadata.get("quantization_plan") == PLAN_VERSION:
            return cached  # else made under an older plan: remade below
    calibration = None
    if calibrate is not None:
        with task_cls(pkg, backend="onnxruntime", **task_options) as task:
            calibration = record_feeds(task, lambda: calibrate(task))
    return ModelPackage.load(quantize_package(pkg, precision, target, calibration=calibration))
