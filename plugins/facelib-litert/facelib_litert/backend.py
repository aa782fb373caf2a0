"""The LiteRT backend and its session (``ai_edge_litert.interpreter.Interpreter``, XNNPACK on CPU).

facelib hands backends ONNX files.  For a file converted from TFLite (the MediaPipe Face
Landmarker package keeps its sources, :mod:`facelib.models.tflite`), :meth:`LiteRTBackend.compile`
copies the recorded ``.tflite`` into the package's compile cache with a companion
``<artefact>.io.json``: the ONNX file's inputs and outputs (names, shapes, dtypes, in ONNX order)
and the TFLite tensor each one is.  :class:`LiteRTSession` runs the TFLite model behind exactly
that interface, so a task cannot tell it from an ONNX Runtime session, and its numbers are
Google's runtime's: the ones the ``mediapipe`` package computes.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from facelib.backends import Availability, Backend, CompileRequest, Session, SpecSession, TensorSpec, check_options
from facelib.backends.onnxruntime import physical_cores
from facelib.errors import (
    BackendError,
    BackendUnavailableError,
    ConversionError,
    InferenceError,
    InputError,
    ModelCardError,
    ModelFileError,
)
from facelib.io.atomic import write_bytes_atomic
from facelib.io.quiet import native_stderr_silenced
from facelib.models.tflite import read_interface, sources
from facelib_litert.source import TFLiteSourceError, find_source

__all__ = ["LiteRTBackend", "LiteRTSession", "TFLiteSourceError"]

_OPTION_NAMES = ("num_threads",)
#: Suffix of the companion file a compiled artefact carries (the ONNX interface it stands for).
IO_SUFFIX = ".io.json"
INSTALL = "pip install 'facelib[litert]' (ai-edge-litert: Linux x86_64/aarch64, macOS arm64)"
#: Workload presets (:data:`facelib.backends.base.WORKLOADS`) of many small models: one LiteRT
#: thread each.  ``pipelined`` (the Face Landmarker's stages on a worker thread) gets the
#: physical cores of the process's CPUs instead: a tracked frame's stages wait on each other, so
#: the pipeline overlaps little, and XNNPACK's threads were faster (docs/plugins/litert.md).
_ONE_THREAD = ("small_models",)
_ALL_CORES = ("pipelined",)


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise BackendUnavailableError(f"LiteRT is not installed ({exc}); {INSTALL}") from exc
    return Interpreter


class LiteRTBackend(Backend):
    """Google LiteRT (the TFLite runtime MediaPipe uses, XNNPACK on CPU) running the ``.tflite``
    models a package was converted from.

    Only packages that keep their TFLite sources can run here (the MediaPipe Face Landmarker,
    converted by this facelib); every other model gets a :class:`TFLiteSourceError` naming the
    backends that run it.

    Options
    -------
    num_threads:
        Threads of each interpreter (a positive int; default: LiteRT's own choice).  The
        ``small_models`` workload uses 1, ``pipelined`` the physical cores this process may
        run on.
    """

    name: ClassVar[str] = "litert"
    formats: ClassVar[tuple[str, ...]] = (".tflite",)
    #: Above ONNX Runtime (0), below the accelerators (100+): ``"auto"`` picks LiteRT for the
    #: packages it runs (:meth:`runs`), which it ran 1.10x (1 core) and 1.31x (2 cores) faster per
    #: frame than ONNX Runtime (BlendshapeCapture, quiet run, docs/plugins/litert.md), and ONNX
    #: Runtime for the rest.
    priority: ClassVar[int] = 10

    def __init__(self, **options: Any) -> None:
        check_options(_OPTION_NAMES, options, "LiteRT")
        threads = options.get("num_threads")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError(f"LiteRT num_threads must be a positive int or None, got {threads!r}")
        super().__init__(**options)

    @classmethod
    def available(cls) -> Availability:
        try:
            _interpreter_class()
        except BackendUnavailableError as exc:
            return Availability(False, str(exc))
        return Availability(True, "CPU (XNNPACK); runs packages that keep their TFLite sources")

    @classmethod
    def version(cls) -> str | None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("ai-edge-litert")
        except PackageNotFoundError:
            return None

    @classmethod
    def runs(cls, card: Any | None) -> bool:
        """True for a package whose every ONNX file has its TFLite source recorded, unchanged since
        (a quantized variant is not); False with no package known (``"auto"`` on a bare file)."""
        if card is None:
            return False
        try:
            recorded = sources(card.metadata)
        except ModelCardError:
            return False
        onnx = {role: item for role, item in card.files.items() if item.path.endswith(".onnx")}
        return bool(onnx) and all(
            role in recorded and recorded[role].onnx_sha256 == item.sha256 for role, item in onnx.items()
        )

    def cache_key(self) -> str:
        """The artefact is the package's own ``.tflite``: threads do not change it."""
        return f"litert|{self.version()}"

    def for_workload(self, workload: str) -> Backend:
        super().for_workload(workload)  # checks the name
        if self.options.get("num_threads") is None and workload in (*_ONE_THREAD, *_ALL_CORES):
            threads = 1 if workload in _ONE_THREAD else physical_cores()
            return type(self)(**{**self.options, "num_threads": threads})
        return self

    def compile(self, request: CompileRequest) -> Path:
        """Copy the TFLite source of ``request.onnx_path`` to ``request.output_path`` with its
        ``.io.json`` companion; :class:`TFLiteSourceError` when the ONNX file has none."""
        check_options((), request.options, "LiteRT", "compile")
        if request.precision != "fp32":
            raise BackendError(
                f"LiteRT runs the TFLite model as Google published it; precision {request.precision!r} is not "
                "available (the MediaPipe models already carry float16 weights)"
            )
        found = find_source(request.onnx_path)
        out = Path(request.output_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        interface = {
            "onnx": request.onnx_path.name,
            "tflite": found.source.path,
            "inputs": [{**s.to_dict(), "tflite": found.source.inputs[s.name]} for s in found.inputs],
            "outputs": [{**s.to_dict(), "tflite": found.source.outputs[s.name]} for s in found.outputs],
        }
        text = json.dumps(interface, indent=1) + "\n"
        write_bytes_atomic(out.with_name(out.name + IO_SUFFIX), text.encode("utf-8"), "LiteRT interface file")
        shutil.copyfile(found.tflite, out)  # ``out`` is already the package cache's temporary name
        return out

    def load(self, artefact: Path) -> Session:
        path = Path(artefact)
        if path.suffix == ".onnx":
            raise TFLiteSourceError(
                f"the LiteRT backend runs .tflite files; open {path.name} through its model package "
                "(ModelPackage.session or a task), which gives LiteRT the TFLite model it was converted from"
            )
        if path.suffix not in self.formats:
            raise ModelFileError(f"the LiteRT backend loads .tflite files, not {path.name}")
        if not path.is_file():
            raise ModelFileError(f"TFLite model not found: {path}")
        return LiteRTSession(path, self.options.get("num_threads"))


def _spec(value: Mapping[str, Any]) -> TensorSpec:
    return TensorSpec(str(value["name"]), tuple(value["shape"]), str(value.get("dtype", "float32")))


class LiteRTSession(SpecSession):
    """One LiteRT interpreter behind the ONNX interface of its companion (or the TFLite file's own).

    Models whose first input dimension is open (the face-mesh model: any number of faces) run one
    row at a time, as MediaPipe runs one face at a time, and the rows are stacked: a batch equals
    its rows run alone.  Runs are serialised per session (an interpreter is not thread-safe).
    """

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        Interpreter = _interpreter_class()
        data = path.read_bytes()
        try:
            own_inputs, own_outputs = read_interface(data, path.name)
        except ConversionError as exc:
            raise ModelFileError(str(exc)) from exc
        companion = path.with_name(path.name + IO_SUFFIX)
        if companion.is_file():
            try:
                io = json.loads(companion.read_text(encoding="utf-8"))
                inputs = [_spec(v) for v in io["inputs"]]
                outputs = [_spec(v) for v in io["outputs"]]
                names = {v["name"]: v["tflite"] for v in (*io["inputs"], *io["outputs"])}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ModelFileError(f"{companion}: unreadable interface file ({exc}); delete the cache") from exc
        else:
            inputs, outputs = list(own_inputs), list(own_outputs)
            names = {s.name: s.name for s in (*inputs, *outputs)}
        super().__init__(path, inputs, outputs)
        try:
            self._interpreter = Interpreter(model_content=data, num_threads=num_threads)
            with native_stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate" (FACELIB_NATIVE_LOGS=1)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(f"LiteRT cannot load {path.name}: {exc}") from exc
        index = {d["name"]: int(d["index"]) for d in self._interpreter.get_input_details()}
        index |= {d["name"]: int(d["index"]) for d in self._interpreter.get_output_details()}
        missing = sorted(t for t in names.values() if t not in index)
        if missing:
            raise ModelFileError(f"{path.name} has no tensors {missing} that {companion.name} names")
        self._index = {name: index[tflite] for name, tflite in names.items()}
        self._dtypes = {s.name: np.dtype(s.dtype) for s in inputs}
        self._per_row = any(s.shape and not isinstance(s.shape[0], int) for s in inputs)
        self._row_shapes = {s.name: tuple(d if isinstance(d, int) else 0 for d in s.shape[1:]) for s in outputs}
        self._lock = threading.Lock()
        self._closed = False

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        names = self.output_names(output_names)
        arrays = {}
        for name, value in feeds.items():
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                raise InputError(f"{self.model_path.name}: input {name!r} has dtype {array.dtype}, expected numbers")
            arrays[name] = np.ascontiguousarray(array, dtype=self._dtypes[name])
        if not self._per_row:
            return self._invoke(arrays, names)
        rows = {len(a) for a in arrays.values()}
        if len(rows) != 1:
            raise InputError(f"{self.model_path.name}: inputs have different batch sizes {sorted(rows)}")
        (count,) = rows
        if count == 0:
            return {n: np.zeros((0, *self._row_shapes[n]), np.float32) for n in names}
        parts = [self._invoke({k: a[i : i + 1] for k, a in arrays.items()}, names) for i in range(count)]
        return {n: np.concatenate([p[n] for p in parts]) for n in names}

    def _invoke(self, feeds: Mapping[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
        with self._lock:
            if self._closed:
                raise InferenceError(f"{self.model_path.name}: the session is closed")
            it = self._interpreter
            try:
                for name, array in feeds.items():
                    it.set_tensor(self._index[name], array)
                it.invoke()
                return {n: it.get_tensor(self._index[n]).copy() for n in names}
            except (ValueError, RuntimeError) as exc:
                raise InferenceError(f"{self.model_path.name}: LiteRT failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._interpreter = None
