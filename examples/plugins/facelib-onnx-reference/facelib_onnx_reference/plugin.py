"""Hook implementation and backend of the example plugin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from facelib.backends import Availability, Backend, Session, SpecSession, hookimpl
from facelib.errors import InferenceError, ModelFileError
from facelib.models import read_onnx_specs


class ReferenceSession(SpecSession):
    """Runs one ONNX file with ``onnx.reference.ReferenceEvaluator``."""

    def __init__(self, path: Path) -> None:
        from onnx.reference import ReferenceEvaluator

        super().__init__(path, *read_onnx_specs(path))
        try:
            self._evaluator = ReferenceEvaluator(str(path))
        except Exception as exc:  # the evaluator raises many types for bad graphs
            raise ModelFileError(f"onnx-reference cannot load {path}: {exc}") from exc

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self.check_feeds(feeds)
        names = self.output_names(output_names or None)
        typed = {spec.name: np.asarray(feeds[spec.name], dtype=np.dtype(spec.dtype)) for spec in self._inputs}
        try:
            values = self._evaluator.run(names, typed)
        except Exception as exc:
            raise InferenceError(f"onnx-reference failed on {self.model_path.name}: {exc}") from exc
        return dict(zip(names, values))


class OnnxReferenceBackend(Backend):
    """The ONNX reference evaluator as a facelib backend (CPU, pure Python)."""

    name: ClassVar[str] = "onnx-reference"
    formats: ClassVar[tuple[str, ...]] = (".onnx",)
    priority: ClassVar[int] = -10  # never chosen by "auto": it is slow

    @classmethod
    def available(cls) -> Availability:
        try:
            import onnx.reference  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"onnx.reference is not importable: {exc}")
        return Availability(True)

    @classmethod
    def version(cls) -> str | None:
        import onnx

        return str(onnx.__version__)

    def load(self, artefact: Path) -> Session:
        return ReferenceSession(Path(artefact))


@hookimpl
def facelib_backends() -> list[type[Backend]]:
    """Return the backend this plugin provides."""
    return [OnnxReferenceBackend]


__all__: list[Any] = ["OnnxReferenceBackend", "facelib_backends"]
