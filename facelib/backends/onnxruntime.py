"""The built-in backend: ONNX Runtime, with execution providers and their options passed through.

``OnnxRuntimeBackend(providers=["CUDAExecutionProvider", "CPUExecutionProvider"])`` works when
the installed onnxruntime build has that provider; the same goes for TensorRT, CANN, OpenVINO,
CoreML and DirectML.  Sessions are cached per (file, size, mtime, options) so one model file is
loaded once per process however many tasks use it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from facelib.backends.base import Availability, Backend, Session, SpecSession, TensorSpec, check_options
from facelib.errors import InferenceError, InputError, ModelFileError

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}

_OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

_SYSFS_CPU = Path("/sys/devices/system/cpu")
_NO_SPIN = {"session.intra_op.allow_spinning": "0"}
#: Spin-wait inside a run (as ONNX Runtime's default), stop spinning as soon as the run returns.
_SPIN_IN_RUN = {"session.force_spinning_stop": "1"}

#: What each workload preset (:data:`facelib.backends.base.WORKLOADS`) means for ONNX Runtime.
#: Measured by benchmarks/bench_defaults.py (quiet run of 2026-12-01, 2-core AMD EPYC; see
#: docs/architecture.md, "Thread presets"):
#:
#: ``small_models``: one intra-op thread.  FSA-Net at batch 1 ran as fast on one thread as on two
#: (2.81 vs 2.77 ms per face, within the spread) at half the CPU; from batch 4 on two threads were
#: 1.42x faster, so tasks switch to ``batched`` sessions from ``BATCHED_FROM`` (4) items.
#: ``batched``: one intra-op thread per physical core this process may use (counted from its
#: affinity mask when the preset is applied), spin-waiting as ONNX Runtime's default: large
#: batches come back to back, and stopping the spinning after each run made FSA-Net at batch
#: 4-16 1.39-1.50x slower in every round (0.86-0.91 vs 0.61-0.62 ms per face, quiet 2-core run).
#: ``interleaved``: spin-waiting inside a run, stopped when it returns
#: (``session.force_spinning_stop``).  Spinning left on between runs steals the CPU from the
#: Python work and the other sessions between turns (the Audio2Face encoder took 1.41 s instead of
#: 0.91 s with it on); switched off altogether, one long call lost 1.14x (0.70 vs 0.61 s for
#: Audio2Face on 12 s of speech) because the workers slept between the operators of that call.
#: ``pipelined``: one intra-op thread and no spinning (the stages already keep the cores busy:
#: pipelined BlendshapeCapture ran 1.21x faster, with 36% less CPU, than on the default threads).
WORKLOAD_OPTIONS: dict[str, dict[str, Any]] = {
    "small_models": {"intra_op_num_threads": 1},
    "batched": {"intra_op_num_threads": None},
    "interleaved": {"session_config": _SPIN_IN_RUN},
    "pipelined": {"intra_op_num_threads": 1, "session_config": _NO_SPIN},
}


def usable_cores() -> int:
    """Logical CPUs this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def physical_cores(cpus: Iterable[int] | None = None, sysfs: Path | None = None) -> int:
    """Physical cores among the logical ``cpus`` (default: this process's affinity mask).

    Read from Linux sysfs (``cpuN/topology/{physical_package_id,core_id}``): SMT siblings count
    once.  Where the topology cannot be read (other systems, containers without sysfs) every
    logical CPU counts as a core.
    """
    if cpus is None:
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    for cpu in cpus:
        topology = (sysfs or _SYSFS_CPU) / f"cpu{cpu}" / "topology"
        try:
            core = ((topology / "physical_package_id").read_text().strip(), (topology / "core_id").read_text().strip())
        except OSError:
            core = ("cpu", str(cpu))
        cores.add(core)
    return max(1, len(cores))


def default_intra_threads() -> int:
    """Intra-op threads for a session given none (0): 0, ONNX Runtime's own choice, unless the
    process is confined to some CPUs (``taskset``, cgroup cpusets), then its physical cores there.

    ONNX Runtime's default sizes the pool from the machine's physical cores and pins each worker
    to a core of its own choosing, outside the process's affinity mask: under ``taskset -c 0`` on
    a 2-core machine its worker ran on CPU 1.  An explicit count makes the workers inherit the mask.
    """
    allowed = usable_cores()
    if allowed >= (os.cpu_count() or allowed):
        return 0
    return physical_cores()


_CACHE: dict[tuple[Any, ...], Any] = {}
_CACHE_LOCK = threading.Lock()


def clear_session_cache() -> None:
    """Drop every cached onnxruntime session (they are freed when no Session uses them)."""
    with _CACHE_LOCK:
        _CACHE.clear()


_OPTION_NAMES = (
    "providers",
    "provider_options",
    "intra_op_num_threads",
    "inter_op_num_threads",
    "graph_optimization_level",
    "session_config",
)


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime (the default backend).

    Options
    -------
    providers:
        Execution providers in order of preference, as onnxruntime takes them: names, or
        ``(name, options)`` pairs.  Default ``["CPUExecutionProvider"]``.
    provider_options:
        One dict per provider, passed to ``InferenceSession`` untouched.
    intra_op_num_threads, inter_op_num_threads:
        Thread pool sizes.  0 (default) = onnxruntime's own (one per physical core), except in
        a process confined to some CPUs (``taskset``), where intra-op threads default to the
        physical cores it may use (:func:`default_intra_threads`).
    graph_optimization_level:
        ``"disable"``, ``"basic"``, ``"extended"`` or ``"all"`` (default).
    session_config:
        Extra ``SessionOptions.add_session_config_entry`` key/value strings.
    """

    name: ClassVar[str] = "onnxruntime"
    formats: ClassVar[tuple[str, ...]] = (".onnx",)
    priority: ClassVar[int] = 0

    def __init__(
        self,
        providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
        provider_options: Sequence[dict[str, Any]] | None = None,
        intra_op_num_threads: int = 0,
        inter_op_num_threads: int = 0,
        graph_optimization_level: str = "all",
        session_config: Mapping[str, str] | None = None,
        **others: Any,
    ) -> None:
        check_options(_OPTION_NAMES, others, "ONNX Runtime")
        if graph_optimization_level not in _OPT_LEVELS:
            raise InputError(
                f"graph_optimization_level must be one of {sorted(_OPT_LEVELS)}, got {graph_optimization_level!r}"
            )
        super().__init__(
            providers=list(providers) if providers else ["CPUExecutionProvider"],
            provider_options=list(provider_options) if provider_options else None,
            intra_op_num_threads=int(intra_op_num_threads),
            inter_op_num_threads=int(inter_op_num_threads),
            graph_optimization_level=graph_optimization_level,
            session_config=dict(session_config or {}),
        )
        self._check_providers()

    def for_workload(self, workload: str) -> OnnxRuntimeBackend:
        super().for_workload(workload)
        preset = WORKLOAD_OPTIONS.get(workload)
        if not preset:
            return self
        options = dict(self.options)
        for key, value in preset.items():
            if value is None and key == "intra_op_num_threads":
                value = physical_cores()
            options[key] = {**options.get(key, {}), **value} if isinstance(value, dict) else value
        return type(self)(**options)

    @classmethod
    def available(cls) -> Availability:
        """Available when ``onnxruntime`` imports; the reason names the build and its providers."""
        from facelib.backends import ort_build

        try:
            import onnxruntime
        except ImportError as exc:
            if not ort_build.installed_distributions():
                return Availability(False, ort_build.missing_runtime_message())
            return Availability(False, f"onnxruntime is not importable: {exc}")
        _, text = ort_build.describe(list(onnxruntime.get_available_providers()))
        return Availability(True, text)

    @classmethod
    def version(cls) -> str | None:
        try:
            import onnxruntime
        except ImportError:
            return None
        return str(onnxruntime.__version__)

    def _check_providers(self) -> None:
        import onnxruntime as ort

        have = set(ort.get_available_providers())
        for provider in self.options["providers"]:
            provider_name = provider[0] if isinstance(provider, tuple) else provider
            if provider_name not in have:
                raise InputError(
                    f"execution provider {provider_name!r} is not in this onnxruntime build "
                    f"(it has {sorted(have)}); install facelib with the matching runtime extra instead of this build "
                    "(facelib[cuda], facelib[cann], facelib[openvino]; docs/install.md)"
                )

    def load(self, artefact: Path) -> Session:
        path = Path(artefact)
        if not path.is_file():
            raise ModelFileError(f"model file not found: {path}")
        stat = path.stat()
        threads = self.options["intra_op_num_threads"] or default_intra_threads()  # depends on the affinity mask
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, repr(sorted(self.options.items())), threads)
        with _CACHE_LOCK:
            session = _CACHE.get(key)
            if session is None:
                session = self._create(path)
                _CACHE[key] = session
        return OnnxRuntimeSession(session, path)

    def _create(self, path: Path) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.options["intra_op_num_threads"] or default_intra_threads()
        opts.inter_op_num_threads = self.options["inter_op_num_threads"]
        opts.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _OPT_LEVELS[self.options["graph_optimization_level"]]
        )
        opts.log_severity_level = 3
        for k, v in self.options["session_config"].items():
            opts.add_session_config_entry(k, v)
        if path.stat().st_size == 0:
            raise ModelFileError(f"{path} is empty (0 bytes); download or convert it again")
        try:
            return ort.InferenceSession(
                os.fspath(path),
                sess_options=opts,
                providers=self.options["providers"],
                provider_options=self.options["provider_options"],
            )
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelFileError(
                f"onnxruntime could not load {path}: {_first_line(exc)}. The file may be truncated, "
                "corrupt or not an ONNX model; fetch or convert it again."
            ) from exc


class OnnxRuntimeSession(SpecSession):
    """A thread-safe wrapper of ``onnxruntime.InferenceSession`` (``run`` may be called concurrently)."""

    def __init__(self, session: Any, model_path: Path) -> None:
        super().__init__(model_path, map(_spec, session.get_inputs()), map(_spec, session.get_outputs()))
        self._session = session
        self._dtypes = {s.name: np.dtype(s.dtype) for s in self._inputs}

    @property
    def providers(self) -> list[str]:
        """Execution providers onnxruntime actually uses for this session."""
        return list(self._session.get_providers())

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        prepared = {name: np.ascontiguousarray(value, dtype=self._dtypes[name]) for name, value in feeds.items()}
        names = self.output_names(output_names)
        try:
            values = self._session.run(names, prepared)
        except Exception as exc:
            shapes = {k: v.shape for k, v in prepared.items()}
            raise InferenceError(
                f"onnxruntime failed running {self.model_path.name} with inputs {shapes}: {_first_line(exc)}"
            ) from exc
        return dict(zip(names, values))

    def close(self) -> None:
        self._session = _Closed(self.model_path)


class _Closed:
    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise InferenceError(f"session for {self.path.name} was closed")


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or None) for d in arg.shape)
    return TensorSpec(arg.name, shape, _ORT_TYPES.get(arg.type, arg.type))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
