"""The TensorRT backend and its session (TensorRT 10/11 tensor-address API, CUDA via cuda-bindings)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from facelib.backends import Availability, Backend, CompileRequest, Session, SpecSession, TensorSpec, check_options
from facelib.errors import BackendError, BackendUnavailableError, InferenceError, InputError, ModelFileError
from facelib_tensorrt import cuda
from facelib_tensorrt.sdk import MIN_MAJOR, dtype_name, import_tensorrt, make_logger, trt_major

_OPTION_NAMES = (
    "device_id",
    "workspace_bytes",
    "builder_optimization_level",
    "timing_cache",
    "strongly_typed",
    "version_compatible",
    "calibration_cache",
    "precision",
    "calibration_data",
)


class TensorRTBackend(Backend):
    """NVIDIA TensorRT: compiles ONNX to ``.engine`` files and runs them on one GPU.

    Options
    -------
    device_id:
        CUDA device ordinal (default 0).
    workspace_bytes:
        Builder workspace limit (default: TensorRT's, the device memory size).
    builder_optimization_level:
        0-5 (TensorRT default 3); higher builds longer and may run faster.
    timing_cache:
        ``True`` (default): ``<facelib cache>/tensorrt/timing-<gpu>-trt<version>.cache``; a path;
        or ``False`` for none.  Reused across builds on the same GPU and TensorRT version.
    strongly_typed:
        Build strongly typed networks on TensorRT 10 too (always on in TensorRT 11).
    version_compatible:
        Build engines later TensorRT runtimes can load (later 10.x and 11.x for a 10.x build,
        later 11.x for an 11.x build).  Such a plan embeds TensorRT's lean runtime as host code,
        so a backend with this option also allows host code when loading
        (``Runtime.engine_host_code_allowed``): load only engines you built or trust.
    calibration_cache:
        File to read/write the int8 calibration cache (TensorRT 10 implicit quantization).
    precision:
        ``fp16``, ``bf16`` or ``int8`` for compile requests that ask for the default ``fp32``.
        On strongly typed networks (TensorRT 11) facelib builds from a float16 / Q/DQ int8 copy
        of the ONNX (see :mod:`facelib_tensorrt.precision`).
    calibration_data:
        ``.npz`` of real input samples (one array per input, samples on axis 0) for int8 when
        the compile request carries none.
    """

    name: ClassVar[str] = "tensorrt"
    formats: ClassVar[tuple[str, ...]] = (".engine", ".plan")
    priority: ClassVar[int] = 300

    def __init__(self, **options: Any) -> None:
        check_options(_OPTION_NAMES, options, "TensorRT")
        if options.get("precision") not in (None, "fp32", "fp16", "bf16", "int8"):
            raise InputError(f"precision must be fp32, fp16, bf16 or int8, got {options['precision']!r}")
        options.setdefault("device_id", 0)
        super().__init__(**options)

    # -- availability ----------------------------------------------------------------------------

    @classmethod
    def available(cls) -> Availability:
        try:
            trt = import_tensorrt()
        except BackendUnavailableError as exc:
            return Availability(False, str(exc))
        if trt_major(trt) < MIN_MAJOR:
            return Availability(
                False, f"TensorRT {trt.__version__} is too old; this plugin needs TensorRT {MIN_MAJOR} or newer"
            )
        try:
            rt = cuda.import_runtime()
        except ImportError as exc:
            return Availability(False, f"the CUDA runtime bindings are missing: {exc}")
        try:
            driver = rt.cudaDriverGetVersion()
            if driver[0] != rt.cudaError_t.cudaSuccess or int(driver[1]) == 0:
                return Availability(False, "no NVIDIA driver is installed (cudaDriverGetVersion reports none)")
            err, count = rt.cudaGetDeviceCount()
        except Exception as exc:  # noqa: BLE001 - a missing libcuda surfaces as various errors
            return Availability(False, f"the CUDA runtime cannot be loaded: {type(exc).__name__}: {exc}")
        if err == rt.cudaError_t.cudaErrorInsufficientDriver:
            return Availability(
                False,
                f"the NVIDIA driver (CUDA {_cuda_version(int(driver[1]))}) is older than the CUDA runtime "
                "cuda-bindings needs; update the driver or install matching cuda-python/tensorrt-cuXX wheels",
            )
        if err == rt.cudaError_t.cudaErrorNoDevice or (err == rt.cudaError_t.cudaSuccess and int(count) == 0):
            return Availability(False, "no CUDA-capable GPU is visible (check CUDA_VISIBLE_DEVICES and nvidia-smi)")
        if err != rt.cudaError_t.cudaSuccess:
            return Availability(False, f"cudaGetDeviceCount failed: {cuda._error_text(rt, err)}")
        return Availability(True)

    @classmethod
    def version(cls) -> str | None:
        try:
            return str(import_tensorrt().__version__)
        except BackendUnavailableError:
            return None

    def _device(self) -> tuple[Any, tuple[str, int, int]]:
        rt = cuda.import_runtime()
        device_id = int(self.options["device_id"])
        count = cuda.check(rt, rt.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if not 0 <= device_id < int(count):
            raise InputError(f"device_id {device_id} does not exist; this machine has {count} CUDA device(s)")
        return rt, cuda.device_summary(rt, device_id)

    def device_tag(self) -> str:
        """``"<GPU name>-sm<major><minor>"`` of the selected device."""
        _, (name, major, minor) = self._device()
        return f"{name}-sm{major}{minor}"

    def cache_key(self) -> str:
        """GPU model and compute capability, TensorRT version and every build option."""
        try:
            tag = self.device_tag()
        except (ImportError, BackendError) as exc:
            raise BackendUnavailableError(f"cannot identify the GPU for the engine cache: {exc}") from exc
        build_options = sorted((k, repr(v)) for k, v in self.options.items() if k != "device_id")
        return f"tensorrt-{self.version()}|{tag}|{build_options}"

    # -- compile / load ------------------------------------------------------------------------

    def compile(self, request: CompileRequest) -> Path:
        """Build an engine; ``request.options`` may override the backend's build options."""
        from facelib_tensorrt.build import build_engine

        check_options(_OPTION_NAMES, request.options, "TensorRT", "compile")
        return build_engine(request, {**self.options, **request.options}, self.device_tag())

    def load(self, artefact: Path) -> Session:
        path = Path(artefact)
        if path.suffix not in self.formats:
            raise ModelFileError(f"the TensorRT backend loads {self.formats} files, not {path.name}")
        if not path.is_file():
            raise ModelFileError(f"TensorRT engine not found: {path}")
        return TensorRTSession(
            path, int(self.options["device_id"]), allow_host_code=bool(self.options.get("version_compatible"))
        )


def _cuda_version(code: int) -> str:
    return f"{code // 1000}.{(code % 1000) // 10}"


class TensorRTSession(SpecSession):
    """One deserialized engine with one execution context, one CUDA stream and its buffers.

    Device buffers grow when an input shape needs more memory than the last call and are kept
    for later calls; every dynamic input is checked against the engine's optimisation profile
    before TensorRT sees it.  ``run`` is serialized by a lock (one context per session).
    """

    def __init__(self, path: Path, device_id: int, allow_host_code: bool = False) -> None:
        self.model_path = path
        self._trt = import_tensorrt()
        self._rt = cuda.import_runtime()
        self._lock = threading.Lock()
        self._device_id = device_id
        self._closed = False
        cuda.set_device(self._rt, device_id)
        self._logger = make_logger(self._trt)
        self._runtime = self._trt.Runtime(self._logger)
        if allow_host_code:
            # NVIDIA, "Version Compatibility" (TensorRT 10.16 developer guide): a version-compatible
            # plan holds the lean runtime, which only deserializes with host code allowed.
            self._runtime.engine_host_code_allowed = True
        data = path.read_bytes()
        if not data:
            raise ModelFileError(f"{path} is empty; delete it so it is compiled again")
        self._engine = self._runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            raise ModelFileError(
                f"TensorRT {self._trt.__version__} could not load {path.name}{self._logger.explain()}. "
                "Engines only load with the TensorRT version and GPU model they were built for: "
                "delete the file (or the package's .facelib-cache) to rebuild it."
            )
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise BackendError(f"could not create a TensorRT execution context for {path.name}{self._logger.explain()}")
        self._inputs, self._outputs, self._ranges = self._describe()
        self._dtypes = {s.name: np.dtype(s.dtype) for s in (*self._inputs, *self._outputs)}
        self._stream = cuda.Stream(self._rt)
        self._buffers: dict[str, cuda.DeviceBuffer] = {}

    def _describe(
        self,
    ) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...], dict[str, tuple[tuple[int, ...], ...]]]:
        trt, engine = self._trt, self._engine
        inputs: list[TensorSpec] = []
        outputs: list[TensorSpec] = []
        ranges: dict[str, tuple[tuple[int, ...], ...]] = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dims = tuple(int(d) for d in engine.get_tensor_shape(name))
            dtype = dtype_name(engine.get_tensor_dtype(name))
            if dtype is None:
                raise ModelFileError(
                    f"{self.model_path.name}: tensor {name!r} has TensorRT type {engine.get_tensor_dtype(name)}, "
                    "which numpy cannot hold; build the engine with float32/float16/integer I/O"
                )
            spec = TensorSpec(name, tuple(d if d >= 0 else None for d in dims), dtype)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                inputs.append(spec)
                if any(d < 0 for d in dims):
                    lo, opt, hi = engine.get_tensor_profile_shape(name, 0)
                    ranges[name] = (tuple(int(v) for v in lo), tuple(int(v) for v in opt), tuple(int(v) for v in hi))
            else:
                outputs.append(spec)
        return tuple(inputs), tuple(outputs), ranges

    def shape_range(self, name: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
        """``(min, opt, max)`` of a dynamic input from the engine's profile 0 (None if static)."""
        rng = self._ranges.get(name)
        return (rng[0], rng[1], rng[2]) if rng else None

    def _check_profile(self, name: str, shape: tuple[int, ...]) -> None:
        rng = self._ranges.get(name)
        if rng is None:
            return
        lo, _, hi = rng
        if any(s < a or s > b for s, a, b in zip(shape, lo, hi)):
            raise InputError(
                f"{self.model_path.name}: input {name!r} has shape {shape}, outside the engine's optimisation "
                f"profile (min {lo}, max {hi}); split the input, or widen the range in the model card's "
                "'shapes' and compile again"
            )

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        names = self.output_names(output_names)
        prepared = {name: np.ascontiguousarray(value, dtype=self._dtypes[name]) for name, value in feeds.items()}
        for name, array in prepared.items():
            self._check_profile(name, array.shape)
        with self._lock:
            if self._closed:
                raise InferenceError(f"session for {self.model_path.name} was closed")
            return self._run_locked(prepared, names)

    def _run_locked(self, prepared: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
        context, rt = self._context, self._rt
        cuda.set_device(rt, self._device_id)
        mark = self._logger.mark()
        for name, array in prepared.items():
            if not context.set_input_shape(name, tuple(array.shape)):
                raise InferenceError(
                    f"TensorRT refused shape {array.shape} for input {name!r} of {self.model_path.name}"
                    f"{self._logger.explain(mark)}"
                )
        results: dict[str, np.ndarray] = {}
        for spec in self._outputs:
            shape = tuple(int(d) for d in context.get_tensor_shape(spec.name))
            if any(d < 0 for d in shape):
                raise InferenceError(
                    f"{self.model_path.name}: output {spec.name!r} has a data-dependent shape {shape}, "
                    "which this backend does not support"
                )
            results[spec.name] = np.empty(shape, dtype=self._dtypes[spec.name])
        for name, array in (*prepared.items(), *results.items()):
            buffer = self._buffers.get(name)
            if buffer is None:
                self._buffers[name] = cuda.DeviceBuffer(rt, array.nbytes)
            else:
                buffer.ensure(array.nbytes)
            if not context.set_tensor_address(name, self._buffers[name].ptr):
                raise InferenceError(f"TensorRT refused the device address of {name!r}{self._logger.explain(mark)}")
        for name, array in prepared.items():
            self._stream.upload(self._buffers[name], array)
        if not context.execute_async_v3(self._stream.handle):
            self._stream.sync()
            shapes = {k: v.shape for k, v in prepared.items()}
            raise InferenceError(
                f"TensorRT failed running {self.model_path.name} with inputs {shapes}{self._logger.explain(mark)}"
            )
        for name in names:
            self._stream.download(results[name], self._buffers[name])
        self._stream.sync()
        return {name: results[name] for name in names}

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                for buffer in self._buffers.values():
                    buffer.free()
                self._buffers.clear()
                self._stream.destroy()
            finally:
                self._context = None
                self._engine = None
                self._runtime = None

    def __del__(self) -> None:
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass
