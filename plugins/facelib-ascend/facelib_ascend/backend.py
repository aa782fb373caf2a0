"""``ascend``: ATC-compiled ``.om`` models run through ais_bench's ``InferSession``."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from facelib.backends import Availability, Backend, CompileRequest, Session, SpecSession, TensorSpec, check_options
from facelib.backends.batching import pad_batch
from facelib.errors import BackendError, BackendUnavailableError, InferenceError, InputError, ModelFileError
from facelib_ascend.atc import cann_version, compile_om, find_atc, read_sidecar

_OPTION_NAMES = (
    "device_id",
    "soc_version",
    "precision_mode",
    "dynamic",
    "gears",
    "range_syntax",
    "input_format",
    "atc",
    "atc_args",
    "atc_log",
    "atc_timeout",
    "mode",
    "output_size_bytes",
)
MODES = ("static", "dymbatch", "dymhw", "dymdims", "dymshape")

#: aclruntime dtype member names and ACL numeric codes -> numpy dtype names.
_DTYPE_NAMES = {
    "float32": "float32",
    "float16": "float16",
    "int8": "int8",
    "int32": "int32",
    "uint8": "uint8",
    "int16": "int16",
    "uint16": "uint16",
    "uint32": "uint32",
    "int64": "int64",
    "uint64": "uint64",
    "double": "float64",
    "double64": "float64",
    "bool": "bool",
}
_DTYPE_CODES = {
    0: "float32",
    1: "float16",
    2: "int8",
    3: "int32",
    4: "uint8",
    6: "int16",
    7: "uint16",
    8: "uint32",
    9: "int64",
    10: "uint64",
    11: "float64",
    12: "bool",
}


def _numpy_dtype(datatype: Any) -> str:
    name = getattr(datatype, "name", None)
    if isinstance(name, str) and name in _DTYPE_NAMES:
        return _DTYPE_NAMES[name]
    try:
        return _DTYPE_CODES[int(datatype)]
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"unsupported Ascend tensor data type {datatype!r}") from None


def _import_infer_session() -> Any:
    try:
        module = importlib.import_module("ais_bench.infer.interface")
    except ImportError as exc:
        raise BackendUnavailableError(
            f"ais_bench is not installed ({exc}); build and install the aclruntime and ais_bench wheels "
            "from https://github.com/Ascend/tools (ais-bench_workload/tool/ais_bench) against your CANN"
        ) from exc
    return module.InferSession


def _import_acl() -> Any:
    try:
        return importlib.import_module("acl")
    except ImportError as exc:
        raise BackendUnavailableError(
            f"pyACL ('acl') is not importable ({exc}); install the CANN toolkit and "
            "source /usr/local/Ascend/ascend-toolkit/set_env.sh"
        ) from exc


def _device_nodes() -> list[str]:
    import glob

    return sorted(glob.glob("/dev/davinci[0-9]*"))


def detect_soc_version() -> str | None:
    """The SoC of this machine's NPU (e.g. ``Ascend310P3``) via pyACL, or None."""
    try:
        name = _import_acl().get_soc_name()
    except Exception:  # noqa: BLE001 - detection is best effort
        return None
    return str(name) if name else None


class AscendBackend(Backend):
    """Huawei Ascend NPUs: ATC compiles ONNX to ``.om``; ais_bench runs it.

    Options
    -------
    device_id:
        NPU id as ``npu-smi info`` shows it (default 0).
    soc_version:
        ATC target, e.g. ``Ascend310P3``; default: detected with ``acl.get_soc_name()``.
    precision_mode:
        ATC ``--precision_mode``; default from the compile precision (fp32 ->
        ``must_keep_origin_dtype``, fp16 -> ``force_fp16``).
    dynamic:
        ``auto`` (default), ``batch``, ``dims`` or ``shape``: how dynamic inputs are compiled
        (see :mod:`facelib_ascend.atc`); ``gears`` overrides the batch sizes / shapes compiled.
    range_syntax:
        ``input_shape`` (CANN >= 7, default) or ``input_shape_range`` (older CANN) for ranges.
    atc, atc_args, atc_log, atc_timeout, input_format:
        ATC executable, extra arguments, log level, timeout (s) and ``--input_format``.
    mode:
        Force the ais_bench infer mode for ``.om`` files without a facelib sidecar.
    output_size_bytes:
        Output buffer bytes for ``dymshape`` models without a sidecar (default 100000 x 64).
    """

    name: ClassVar[str] = "ascend"
    formats: ClassVar[tuple[str, ...]] = (".om",)
    priority: ClassVar[int] = 300

    def __init__(self, **options: Any) -> None:
        check_options(_OPTION_NAMES, options, "Ascend")
        if options.get("mode") is not None and options["mode"] not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {options['mode']!r}")
        options.setdefault("device_id", 0)
        super().__init__(**options)

    @classmethod
    def available(cls) -> Availability:
        try:
            _import_infer_session()
            acl = _import_acl()
        except BackendUnavailableError as exc:
            return Availability(False, str(exc))
        try:
            count, ret = acl.rt.get_device_count()
        except Exception as exc:  # noqa: BLE001 - driver problems surface in many forms
            return Availability(False, f"the Ascend driver cannot be queried: {type(exc).__name__}: {exc}")
        if ret != 0 and _device_nodes():
            # some CANN versions answer only after aclInit (which ais_bench does itself)
            return Availability(True)
        if ret != 0:
            return Availability(
                False, f"no Ascend NPU is usable (acl.rt.get_device_count returned error {ret}); check 'npu-smi info'"
            )
        if int(count) == 0:
            return Availability(
                False, "no Ascend NPU is visible (check 'npu-smi info' and the container's /dev/davinci*)"
            )
        return Availability(True)

    @classmethod
    def version(cls) -> str | None:
        from importlib.metadata import PackageNotFoundError, version

        for dist in ("ais_bench", "aclruntime"):
            try:
                return f"{dist} {version(dist)}"
            except PackageNotFoundError:
                continue
        return None

    def soc_version(self) -> str:
        soc = self.options.get("soc_version") or detect_soc_version()
        if not soc:
            raise BackendError(
                "cannot tell which Ascend SoC to compile for: pass soc_version='Ascend310P3' (see 'npu-smi info') "
                "or run where pyACL can see the NPU"
            )
        return str(soc)

    def cache_key(self) -> str:
        """ais_bench version, SoC, the CANN version of the ATC that compiles, and the build options."""
        build = sorted((k, repr(v)) for k, v in self.options.items() if k not in ("device_id", "mode", "atc"))
        try:
            cann = cann_version(find_atc(self.options))
        except BackendUnavailableError:
            cann = cann_version(None)
        return f"ascend|{self.version()}|{self.soc_version()}|{cann}|{build}"

    def compile(self, request: CompileRequest) -> Path:
        """Run ATC; ``request.options`` may override the backend's compile options."""
        check_options(_OPTION_NAMES, request.options, "Ascend", "compile")
        options = {**self.options, **request.options}
        soc = options.get("soc_version") or self.soc_version()
        return compile_om(request, options, str(soc))

    def load(self, artefact: Path) -> Session:
        path = Path(artefact)
        if path.suffix not in self.formats:
            raise ModelFileError(f"the Ascend backend loads .om files, not {path.name}")
        if not path.is_file():
            raise ModelFileError(f"Ascend model not found: {path}")
        return AscendSession(path, self.options)


class AscendSession(SpecSession):
    """One ``InferSession``: inputs passed positionally in ``get_inputs()`` order, outputs named back.

    The infer mode comes from the compile sidecar (or the ``mode`` option, or the ``-1`` dims of
    the model).  Batch-gear models pad a batch up to the next compiled gear and slice the outputs;
    shapes no gear or range covers are refused with the shapes that would work.
    """

    def __init__(self, path: Path, options: Mapping[str, Any]) -> None:
        self.model_path = path
        infer_session = _import_infer_session()
        try:
            self._session = infer_session(int(options.get("device_id", 0)), str(path))
        except RuntimeError as exc:
            raise ModelFileError(
                f"ais_bench could not load {path.name}: {exc}. The .om must be compiled for this SoC "
                "with a matching CANN version; delete it to compile again."
            ) from exc
        self._lock = threading.Lock()
        self._closed = False
        self._info = read_sidecar(path) or {}
        self._in_desc = list(self._session.get_inputs())
        self._out_desc = list(self._session.get_outputs())
        self._inputs = self._specs(self._in_desc, self._info.get("inputs"), "inputs")
        self._outputs = self._specs(self._out_desc, self._info.get("outputs"), "outputs")
        self._dtypes = {s.name: np.dtype(s.dtype) for s in self._inputs}
        self._mode = str(options.get("mode") or self._info.get("mode") or self._guess_mode())
        self._custom_sizes = self._info.get("output_bytes") or [
            int(options.get("output_size_bytes") or 100000 * 64)
        ] * len(self._out_desc)

    def _specs(self, descs: list[Any], recorded: list[dict[str, Any]] | None, kind: str) -> tuple[TensorSpec, ...]:
        if recorded is not None and len(recorded) != len(descs):
            raise ModelFileError(
                f"{self.model_path.name}: the .om has {len(descs)} {kind} but its sidecar lists {len(recorded)}; "
                "delete both and compile again"
            )
        specs = []
        for i, desc in enumerate(descs):
            dtype = _numpy_dtype(desc.datatype)
            shape = tuple(int(d) if int(d) >= 0 else None for d in desc.shape)
            name = str(desc.name)
            if recorded is not None:
                name = recorded[i]["name"]  # ATC keeps input names; outputs are mapped by position
                shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in recorded[i]["shape"])
            specs.append(TensorSpec(name, shape, dtype))
        return tuple(specs)

    def _guess_mode(self) -> str:
        dyn = [[i for i, d in enumerate(desc.shape) if int(d) < 0] for desc in self._in_desc]
        if not any(dyn):
            return "static"
        if all(d in ([], [0]) for d in dyn):
            return "dymbatch"
        return "dymshape"

    @property
    def mode(self) -> str:
        """The ais_bench infer mode used: static, dymbatch, dymhw, dymdims or dymshape."""
        return self._mode

    def _fit(self, arrays: list[np.ndarray]) -> tuple[list[np.ndarray], int | None]:
        """Check shapes against gears/ranges; pad batches up to a gear. Returns (arrays, real batch)."""
        names = [s.name for s in self._inputs]
        if self._mode == "dymbatch":
            dynamic = [i for i, s in enumerate(self._inputs) if s.shape and s.shape[0] is None]
            batches = {arrays[i].shape[0] for i in dynamic}
            if len(batches) != 1:
                raise InputError(
                    f"{self.model_path.name}: dynamic inputs must share one batch size, got {sorted(batches)}"
                )
            batch = batches.pop()
            gears = self._info.get("batch_gears")
            if not gears:
                return arrays, None
            fitting = [g for g in gears if g >= batch]
            if not fitting:
                raise InputError(
                    f"{self.model_path.name}: batch {batch} exceeds the largest compiled batch gear {max(gears)}; "
                    "split the input, or widen the model card's 'shapes' and compile again"
                )
            gear = fitting[0]
            if gear != batch:
                for i in dynamic:
                    arrays[i] = pad_batch(arrays[i], gear)
            return arrays, batch
        if self._mode == "dymdims" and self._info.get("dims_gears"):
            shape = {n: list(a.shape) for n, a in zip(names, arrays)}
            for gear in self._info["dims_gears"]:
                if all(shape[n] == g for n, g in gear.items()):
                    return arrays, None
            raise InputError(
                f"{self.model_path.name}: input shapes {shape} match no compiled gear; compiled gears: "
                f"{self._info['dims_gears']} (compile with dynamic='shape' for free shapes)"
            )
        if self._mode == "dymshape" and self._info.get("ranges"):
            for n, a in zip(names, arrays):
                if n in self._info["ranges"]:
                    lo, hi = self._info["ranges"][n]
                    if any(s < x or s > y for s, x, y in zip(a.shape, lo, hi)):
                        raise InputError(
                            f"{self.model_path.name}: input {n!r} has shape {a.shape}, outside the compiled range "
                            f"{tuple(lo)}..{tuple(hi)}; widen the model card's 'shapes' and compile again"
                        )
        return arrays, None

    def _prepare(self, arrays: list[np.ndarray]) -> None:
        """Tell aclruntime the shapes of this call, with the setters every ais_bench version has.

        ``InferSession.infer(mode=...)`` is not used: the Ascend/tools ais_bench (2023) ignores
        ``static``/``dymbatch`` there and never sets the dynamic batch, while the msit-era one
        does; ``set_staticbatch``/``set_dynamic_batchsize``/``set_dynamic_hw``/``set_dynamic_dims``/
        ``set_dynamic_shape``/``set_custom_outsize`` and ``run(feeds, out_array=True)`` are the same in both.
        """
        session, mode = self._session, self._mode
        if mode == "static":
            session.set_staticbatch()
        elif mode == "dymbatch":
            dynamic = [i for i, d in enumerate(self._in_desc) if any(int(v) < 0 for v in d.shape)]
            if not dynamic:
                raise InferenceError(f"{self.model_path.name}: not a dynamic-batch model (no -1 input dims)")
            first = dynamic[0]
            axis = next(j for j, v in enumerate(self._in_desc[first].shape) if int(v) < 0)
            session.set_dynamic_batchsize(int(arrays[first].shape[axis]))
        elif mode == "dymhw":
            first = next(i for i, d in enumerate(self._in_desc) if int(d.shape[2]) < 0 and int(d.shape[3]) < 0)
            session.set_dynamic_hw(int(arrays[first].shape[2]), int(arrays[first].shape[3]))  # as ais_bench passes them
        else:
            text = ";".join(f"{d.name}:{','.join(str(v) for v in a.shape)}" for d, a in zip(self._in_desc, arrays))
            if mode == "dymdims":
                session.set_dynamic_dims(text)
            else:
                session.set_dynamic_shape(text)
                session.set_custom_outsize([int(v) for v in self._custom_sizes])

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        names = self.output_names(output_names)
        known = [o.name for o in self._outputs]
        arrays = [np.ascontiguousarray(feeds[s.name], dtype=self._dtypes[s.name]) for s in self._inputs]
        arrays, batch = self._fit(arrays)
        with self._lock:
            if self._closed:
                raise InferenceError(f"session for {self.model_path.name} was closed")
            try:
                self._prepare(arrays)
                values = self._session.run(arrays, out_array=True)
            except RuntimeError as exc:
                shapes = [a.shape for a in arrays]
                raise InferenceError(
                    f"ais_bench failed running {self.model_path.name} (mode {self._mode}) with inputs {shapes}: {exc}"
                ) from exc
        if len(values) != len(known):
            raise InferenceError(
                f"{self.model_path.name}: ais_bench returned {len(values)} outputs, expected {len(known)}"
            )
        out = {}
        for name, value in zip(known, values):
            if name not in names:
                continue
            value = np.asarray(value)
            if batch is not None:
                if value.ndim == 0 or value.shape[0] < batch:
                    raise InferenceError(f"{self.model_path.name}: output {name!r} has no batch dimension to slice")
                value = value[:batch]
            out[name] = value
        return {n: out[n] for n in names}

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            free = getattr(self._session, "free_resource", None)
            if callable(free):
                free()
