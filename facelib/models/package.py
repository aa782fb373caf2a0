"""Model packages: a directory with a model card (``facelib.json``) and the files it names.

:class:`ModelPackage` loads and validates a package and opens sessions on any backend.  For a
backend that cannot read ONNX, the compiled artefact is cached beside the package (or, when the
package directory is read-only, under the user cache directory), keyed by backend, backend
options, compile options and the ONNX file's hash.
"""

from __future__ import annotations

import glob
import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from facelib.backends.base import Backend, CompileRequest, Session, TensorSpec
from facelib.errors import ModelCardError, ModelFileError
from facelib.models.card import CARD_FILENAME, ModelCard, ModelFile

_COMPILE_LOCK = threading.Lock()


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (bounded memory for large weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def read_onnx_specs(path: str | Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs and outputs declared by an ONNX file, without creating a runtime session.

    Raises :class:`ModelFileError` for a missing, empty, truncated or non-ONNX file.
    """
    import onnx
    from onnx import TensorProto, helper

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes)")
    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelFileError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc}); it may be truncated or corrupt"
        ) from exc
    if not model.graph.node:
        raise ModelFileError(f"{path} parsed as ONNX but has an empty graph; it is not a model")
    initializers = {i.name for i in model.graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        dims: list[int | str | None] = []
        for d in tensor.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        np_type = helper.tensor_dtype_to_np_dtype(tensor.elem_type) if tensor.elem_type else None
        dtype = str(np_type) if np_type is not None and tensor.elem_type != TensorProto.UNDEFINED else "unknown"
        return TensorSpec(value.name, tuple(dims), dtype)

    inputs = tuple(spec(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(spec(v) for v in model.graph.output)
    return inputs, outputs


def specs_mismatch(declared: Sequence[TensorSpec], actual: Sequence[TensorSpec], kind: str) -> list[str]:
    """Human-readable differences between the card's specs and a file's (empty when they agree).

    A dimension declared as a string or None on the card is dynamic and matches anything; a
    fixed dimension must match a fixed dimension of the file, or a dynamic one.
    """
    problems = []
    by_name = {s.name: s for s in actual}
    for want in declared:
        have = by_name.get(want.name)
        if have is None:
            problems.append(f"{kind} {want.name!r} is missing (file has {sorted(by_name)})")
            continue
        if len(want.shape) != len(have.shape):
            problems.append(f"{kind} {want.name!r}: rank {len(have.shape)}, card says {want.shape}")
            continue
        for i, (w, h) in enumerate(zip(want.shape, have.shape)):
            if isinstance(w, int) and isinstance(h, int) and w >= 0 and h >= 0 and w != h:
                problems.append(f"{kind} {want.name!r}: dim {i} is {h}, card says {w}")
        if want.dtype != have.dtype and "unknown" not in (want.dtype, have.dtype):
            problems.append(f"{kind} {want.name!r}: dtype {have.dtype}, card says {want.dtype}")
    return problems


@attrs.define
class ModelPackage:
    """A loaded model package: its directory and card.

    Use :meth:`load` to open one; :meth:`validate` checks every file against the card;
    :meth:`session` opens one file on a backend.
    """

    root: Path
    card: ModelCard

    @classmethod
    def load(cls, path: str | Path) -> ModelPackage:
        """Open the package at ``path`` (a directory, or its ``facelib.json``).

        Checks that the card is valid and every file it names exists and is not empty; use
        :meth:`validate` for the full check of I/O names, shapes and hashes.
        """
        path = Path(path).expanduser()
        if path.is_file() and path.name == CARD_FILENAME:
            path = path.parent
        if not path.exists():
            raise ModelCardError(f"model package not found: {path}")
        if not path.is_dir():
            raise ModelCardError(
                f"{path} is a file, not a model package directory; use 'facelib info' to inspect a bare model file"
            )
        card = ModelCard.read(path / CARD_FILENAME)
        package = cls(path, card)
        for role, item in card.files.items():
            file_path = package.path(role)
            if not file_path.is_file():
                raise ModelFileError(f"{path}: file {item.path!r} (role {role!r}) is missing")
            if file_path.stat().st_size == 0:
                raise ModelFileError(f"{path}: file {item.path!r} (role {role!r}) is empty")
        return package

    def path(self, role: str) -> Path:
        """Absolute path of the file with ``role``; a path leaving the package is refused."""
        item = self.card.file(role)
        candidate = (self.root / item.path).resolve()
        if not candidate.is_relative_to(self.root.resolve()):
            raise ModelCardError(f"file {item.path!r} of role {role!r} points outside the package")
        return candidate

    def validate(self, check_hashes: bool = True) -> list[str]:
        """Every problem found (empty when the package is sound).

        Checks that each ONNX file parses, exposes the inputs/outputs of the card with the same
        ranks, fixed dims and dtypes, and (with ``check_hashes``) matches the card's sha256.
        """
        problems: list[str] = []
        for role, item in self.card.files.items():
            where = f"{role} ({item.path})"
            try:
                file_path = self.path(role)
            except ModelCardError as exc:
                problems.append(str(exc))
                continue
            if not file_path.is_file():
                problems.append(f"{where}: file is missing")
                continue
            if check_hashes and item.sha256 and sha256_file(file_path) != item.sha256:
                problems.append(f"{where}: sha256 differs from the card; the file is corrupt or replaced")
            if file_path.suffix != ".onnx":
                continue
            try:
                inputs, outputs = read_onnx_specs(file_path)
            except ModelFileError as exc:
                problems.append(f"{where}: {exc}")
                continue
            problems += [f"{where}: {p}" for p in specs_mismatch(item.inputs, inputs, "input")]
            problems += [f"{where}: {p}" for p in specs_mismatch(item.outputs, outputs, "output")]
        return problems + self._tflite_problems(check_hashes)

    def _tflite_problems(self, check_hashes: bool) -> list[str]:
        """Problems of the TFLite sources the card records (:mod:`facelib.models.tflite`)."""
        from facelib.models.tflite import sources

        problems: list[str] = []
        try:
            recorded = sources(self.card.metadata)
        except ModelCardError as exc:
            return [str(exc)]
        for role, source in recorded.items():
            path = (self.root / source.path).resolve()
            where = f"TFLite source of {role} ({source.path})"
            if role not in self.card.files:
                problems.append(f"{where}: the card has no file with role {role!r}")
            elif not path.is_relative_to(self.root.resolve()):
                problems.append(f"{where}: points outside the package")
            elif not path.is_file():
                problems.append(f"{where}: file is missing")
            elif check_hashes and sha256_file(path) != source.sha256:
                problems.append(f"{where}: sha256 differs from the card; the file is corrupt or replaced")
        return problems

    def check(self, check_hashes: bool = True) -> ModelPackage:
        """Raise :class:`ModelFileError` listing every problem :meth:`validate` finds."""
        problems = self.validate(check_hashes=check_hashes)
        if problems:
            raise ModelFileError(f"model package {self.root} is not valid:\n  " + "\n  ".join(problems))
        return self

    def session(self, role: str, backend: Backend, compile_options: dict[str, Any] | None = None) -> Session:
        """Open the file with ``role`` on ``backend``, compiling (and caching) when needed.

        The session's inputs/outputs are checked against the card.  A backend chosen by
        ``"auto"`` that does not run this package (:meth:`~facelib.backends.Backend.runs`) is
        replaced by the best one that does; one whose compile or load fails gives way to the next available one, with a
        one-line warning (:func:`facelib.backends.registry.open_with_fallback`); a backend
        named explicitly raises :class:`~facelib.errors.BackendError` naming it.
        """
        from facelib.backends.registry import active_backend, auto_for, open_with_fallback

        backend = auto_for(active_backend(backend), self.card)  # "auto": the best backend for this package
        return open_with_fallback(backend, lambda b: self._open_session(role, b, compile_options))

    def _open_session(self, role: str, backend: Backend, compile_options: dict[str, Any] | None) -> Session:
        item = self.card.file(role)
        source = self.path(role)
        if source.suffix in backend.formats:
            artefact = source
        elif backend.needs_compile and source.suffix == ".onnx":
            artefact = self._compiled(role, item, source, backend, compile_options or {})
        else:
            raise ModelFileError(
                f"backend {backend.name!r} loads {backend.formats}, but {item.path!r} is {source.suffix}"
            )
        session = backend.load(artefact)
        problems = specs_mismatch(item.inputs, session.inputs, "input")
        problems += specs_mismatch(item.outputs, session.outputs, "output")
        if problems:
            session.close()
            raise ModelFileError(
                f"{artefact} does not match the model card of {self.root}:\n  " + "\n  ".join(problems)
            )
        return session

    def sessions(self, roles: Iterable[str], backend: Backend) -> dict[str, Session]:
        """:meth:`session` for several roles."""
        return {role: self.session(role, backend) for role in roles}

    # -- compiled artefact cache --------------------------------------------------------------

    def compiled_path(self, role: str, backend: Backend, compile_options: dict[str, Any] | None = None) -> Path:
        """Where the compiled artefact of ``role`` for ``backend`` lives (may not exist yet)."""
        item = self.card.file(role)
        source = self.path(role)
        onnx_hash = item.sha256 or sha256_file(source)
        key_text = f"{onnx_hash}|{backend.cache_key()}|{sorted((compile_options or {}).items())!r}"
        key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
        suffix = backend.formats[0] if backend.formats else ".bin"
        name = f"{Path(item.path).stem}-{key}{suffix}"
        local = self.root / ".facelib-cache" / backend.name
        from facelib.models.bundled import is_bundled

        if os.access(self.root, os.W_OK) and not is_bundled(self.root):  # never write into site-packages
            return local / name
        from facelib.models.cache import cache_dir

        return cache_dir() / "compiled" / self.card.name / backend.name / name

    def _compiled(self, role: str, item: ModelFile, source: Path, backend: Backend, options: dict[str, Any]) -> Path:
        target = self.compiled_path(role, backend, options)
        with _COMPILE_LOCK:
            if target.is_file() and target.stat().st_size > 0:
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
            request = CompileRequest(
                onnx_path=source,
                output_path=tmp,
                shapes=item.shapes,
                precision=str(options.get("precision", "fp32")),
                calibration=options.get("calibration"),
                options={k: v for k, v in options.items() if k not in ("precision", "calibration")},
            )
            produced = Path(backend.compile(request))
            # companions (``<artefact>.<what>``, e.g. the shape ranges a build was made for) move
            # first, so an artefact in the cache always has its companions beside it
            for companion in produced.parent.glob(glob.escape(produced.name) + ".*"):
                companion.replace(target.with_name(target.name + companion.name[len(produced.name) :]))
            produced.replace(target)
        return target
