"""The backend contract: a :class:`Backend` turns a model artefact into a :class:`Session`.

Nothing in this module (or anything above it: tasks, processing, CLI) imports a vendor SDK.
A backend plugin implements :class:`Backend` and :class:`Session` and returns its backend
classes from the ``facelib_backends`` hook (see :mod:`facelib.backends.hookspecs`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import attrs
import numpy as np

from facelib.errors import BackendError, InputError

#: One dimension of a tensor shape: a fixed size, a symbolic name (``"batch"``) or unknown.
Dim = int | str | None


def _shape(value: Iterable[Dim]) -> tuple[Dim, ...]:
    return tuple(value)


def _ints(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


@attrs.frozen
class TensorSpec:
    """Name, shape and element type of one model input or output.

    ``shape`` holds an ``int`` for a fixed dimension and a ``str`` (symbolic name) or ``None``
    for a dynamic one.  ``dtype`` is a numpy dtype name such as ``"float32"``.
    """

    name: str
    shape: tuple[Dim, ...] = attrs.field(converter=_shape)
    dtype: str = "float32"

    @property
    def is_dynamic(self) -> bool:
        """True when any dimension is not a fixed integer."""
        return any(not isinstance(d, int) or d < 0 for d in self.shape)

    def accepts(self, shape: Sequence[int]) -> bool:
        """True when an array of ``shape`` fits this spec (same rank, fixed dims equal)."""
        if len(shape) != len(self.shape):
            return False
        return all(not isinstance(d, int) or d < 0 or d == s for d, s in zip(self.shape, shape))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@attrs.frozen
class ShapeRange:
    """Smallest, typical and largest shape of one dynamic input, for compilers that need them.

    TensorRT optimisation profiles, ATC ``--dynamic_dims`` / shape ranges, TPU-MLIR stages and
    MagicMind ``dim_range`` are all built from these three shapes.
    """

    min: tuple[int, ...] = attrs.field(converter=_ints)
    opt: tuple[int, ...] = attrs.field(converter=_ints)
    max: tuple[int, ...] = attrs.field(converter=_ints)

    def __attrs_post_init__(self) -> None:
        if not (len(self.min) == len(self.opt) == len(self.max)):
            raise InputError("ShapeRange: min, opt and max must have the same rank")
        for lo, mid, hi in zip(self.min, self.opt, self.max):
            if not lo <= mid <= hi:
                raise InputError(f"ShapeRange: need min <= opt <= max per dimension, got {self}")


@attrs.frozen
class CompileRequest:
    """What a backend needs to compile one ONNX file to its native artefact.

    Attributes
    ----------
    onnx_path:
        The ONNX model to compile.
    output_path:
        Where the native artefact must be written (the caller owns the cache layout).
    shapes:
        Input name -> :class:`ShapeRange`, for every dynamic input (from the model card).
    precision:
        ``"fp32"`` (default), ``"fp16"``, ``"bf16"`` or ``"int8"``; a backend refuses what it
        cannot do with a :class:`~facelib.errors.BackendError`.
    calibration:
        For ``int8``: a sequence of input dicts drawn from real data.
    options:
        Backend-specific compile options, passed through untouched.
    """

    onnx_path: Path = attrs.field(converter=Path)
    output_path: Path = attrs.field(converter=Path)
    shapes: Mapping[str, ShapeRange] = attrs.field(factory=dict)
    precision: str = "fp32"
    calibration: Sequence[Mapping[str, np.ndarray]] | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Availability:
    """Whether a backend can run here, and if not, what is missing (a sentence for humans).

    An available backend may still give a ``reason``: details shown by ``facelib backends``
    (ONNX Runtime: its build and execution providers).
    """

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


class Session(abc.ABC):
    """A loaded model, ready to run.  Use as a context manager or call :meth:`close`."""

    #: The artefact this session was loaded from (for error messages).
    model_path: Path

    @property
    @abc.abstractmethod
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Specs of the model inputs, in the model's order."""

    @property
    @abc.abstractmethod
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Specs of the model outputs, in the model's order."""

    @abc.abstractmethod
    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` (input name -> array) and return output name -> array.

        ``output_names`` selects outputs (default: all).  Implementations raise
        :class:`~facelib.errors.InputError` for feeds that do not match :attr:`inputs` and
        :class:`~facelib.errors.InferenceError` when the runtime fails.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, default does nothing
        """Release the resources held by this session."""

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers for implementations ---------------------------------------------------------

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Raise :class:`InputError` unless ``feeds`` names every input with a fitting shape."""
        specs = {spec.name: spec for spec in self.inputs}
        unknown = sorted(set(feeds) - set(specs))
        missing = sorted(set(specs) - set(feeds))
        if unknown or missing:
            raise InputError(
                f"{self.model_path.name}: inputs do not match the model; "
                f"missing {missing or 'none'}, unknown {unknown or 'none'}; "
                f"the model takes {[s.name for s in self.inputs]}"
            )
        for name, array in feeds.items():
            spec = specs[name]
            if not spec.accepts(np.shape(array)):
                raise InputError(
                    f"{self.model_path.name}: input {name!r} has shape {tuple(np.shape(array))}, "
                    f"the model expects {spec.shape}"
                )

    def output_names(self, output_names: Sequence[str] | None) -> list[str]:
        """The outputs to return: ``output_names`` (checked) or all of :attr:`outputs` in order.

        Raises :class:`InputError` naming the model's outputs when one is unknown.
        """
        known = [o.name for o in self.outputs]
        if output_names is None:
            return known
        names = list(output_names)
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise InputError(f"{self.model_path.name}: no outputs named {unknown}; it has {known}")
        return names


class SpecSession(Session):
    """A :class:`Session` whose input and output specs are known when it is loaded.

    Implementations pass the specs to ``__init__`` (or assign ``_inputs`` / ``_outputs``) and
    implement only :meth:`run` (and :meth:`close`); :attr:`inputs` and :attr:`outputs` are
    served from what was stored.
    """

    _inputs: tuple[TensorSpec, ...]
    _outputs: tuple[TensorSpec, ...]

    def __init__(self, model_path: Path, inputs: Iterable[TensorSpec], outputs: Iterable[TensorSpec]) -> None:
        self.model_path = Path(model_path)
        self._inputs = tuple(inputs)
        self._outputs = tuple(outputs)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs


def check_options(known: Iterable[str], given: Iterable[str], backend: str, kind: str = "backend") -> None:
    """Raise :class:`InputError` when ``given`` holds an option name not in ``known``.

    ``backend`` names the backend for the message (``"TensorRT"``), ``kind`` the options
    (``"backend"`` for constructor options, ``"compile"`` for :attr:`CompileRequest.options`).
    The message lists the unknown names and every known one, in ``known``'s order.
    """
    names = list(dict.fromkeys(known))
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InputError(f"unknown {backend} {kind} options {unknown}; known: {names}")


#: Workload presets a task may ask of its backend (:meth:`Backend.for_workload`): how the task
#: calls its sessions, never an option of one runtime.  Each backend turns a preset into its own
#: options, or ignores it.
WORKLOADS: dict[str, str] = {
    "small_models": "small networks run per face or per crop, with Python work between the runs",
    "batched": "the same small networks on a batch of at least BATCHED_FROM items per run",
    "interleaved": "several sessions that take turns on one stream of frames, with Python work between runs",
    "pipelined": "several sessions that run at the same time on different threads (one stage each)",
}

#: A task tuned for ``small_models`` runs batches of at least this many items on sessions tuned
#: for ``batched`` instead.  FSA-Net on a 2-core EPYC (benchmarks/bench_defaults.py, quiet run):
#: batch 1 one thread 2.81 vs two 2.77 ms per face (a tie, at half the CPU); batch 4 1.85 vs 1.31
#: (two threads 1.42x faster); batch 16 1.70 vs 1.07 (1.58x).
BATCHED_FROM = 4


class Backend(abc.ABC):
    """Turns model artefacts into sessions on one kind of device.

    Subclasses set the class attributes and implement :meth:`available` and :meth:`load`;
    backends whose runtime cannot read ONNX also implement :meth:`compile`.  The constructor
    takes the backend's own options as keyword arguments (device id, provider lists...).
    """

    #: Unique short name used to select the backend (``facelib ... --backend NAME``).
    name: ClassVar[str]
    #: File suffixes :meth:`load` accepts, e.g. ``(".onnx",)`` or ``(".engine", ".plan")``.
    formats: ClassVar[tuple[str, ...]] = (".onnx",)
    #: Preference when the user asks for ``"auto"``: the highest available wins.
    #: The built-in ONNX Runtime CPU backend has priority 0; accelerators use 100 and up.
    priority: ClassVar[int] = 50

    def __init__(self, **options: Any) -> None:
        self.options: dict[str, Any] = dict(options)

    @classmethod
    @abc.abstractmethod
    def available(cls) -> Availability:
        """Say whether this backend can run here; when not, the reason names what is missing."""

    @classmethod
    def version(cls) -> str | None:
        """Version of the runtime/SDK this backend drives, or None when it is not installed."""
        return None

    @classmethod
    def runs(cls, card: Any | None) -> bool:
        """Whether ``backend="auto"`` may choose this backend for a package with ``card`` (a
        :class:`~facelib.models.card.ModelCard`), or with no package known (``None``).

        The default, every model, suits backends that read or compile any ONNX file.  A backend
        that runs only some packages (LiteRT: those that keep their TFLite sources) returns
        False for the others, and for ``None``, so "auto" passes it over instead of failing.
        """
        return True

    @property
    def needs_compile(self) -> bool:
        """True when ONNX must be compiled (:meth:`compile`) before :meth:`load`."""
        return ".onnx" not in self.formats

    def compile(self, request: CompileRequest) -> Path:
        """Compile ``request.onnx_path`` to the native artefact at ``request.output_path``.

        A backend may write companion files named ``<artefact>.<what>`` beside it (facts its
        sessions need that the native format does not carry); model packages cache them with it.
        """
        raise BackendError(f"backend {self.name!r} loads ONNX directly and has no compile step")

    def for_workload(self, workload: str) -> Backend:
        """This backend tuned for ``workload`` (a key of :data:`WORKLOADS`).

        Tasks ask for it only when the user chose the backend by name without options.  The
        default returns ``self`` unchanged; a backend with options that suit a workload better
        (thread counts, spin-waiting) returns a new instance with them.
        """
        if workload not in WORKLOADS:
            raise BackendError(f"unknown workload {workload!r}; known workloads: {sorted(WORKLOADS)}")
        return self

    def cache_key(self) -> str:
        """A string that changes whenever compiled artefacts would differ (versions, options).

        Model packages cache compiled artefacts under a hash of this key and the ONNX file.
        """
        return f"{self.name}-{self.version()}-{sorted(self.options.items())!r}"

    @abc.abstractmethod
    def load(self, artefact: Path) -> Session:
        """Load a model artefact (a file with one of :attr:`formats`) into a session."""
