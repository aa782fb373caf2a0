"""The ``cambricon`` backend: MagicMind builds ONNX into a serialized model and runs it on an MLU."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import attrs

from facelib.backends.base import Availability, Backend, CompileRequest, Session, check_options
from facelib.errors import InputError
from facelib_cambricon.builder import BuildOptions, build_from_onnx


class CambriconBackend(Backend):
    """Cambricon MLU (MLU370 and newer) through MagicMind.

    Options
    -------
    device_id:
        MLU index, default 0.
    precision_mode, mutable, batch_size, archs, type64to32, calibration_algorithm, computation_preference:
        Build options, see :class:`facelib_cambricon.builder.BuildOptions`.
    """

    name: ClassVar[str] = "cambricon"
    formats: ClassVar[tuple[str, ...]] = (".mm", ".magicmind")
    priority: ClassVar[int] = 250

    def __init__(self, device_id: int = 0, **options: Any) -> None:
        if not isinstance(device_id, int) or device_id < 0:
            raise InputError(f"device_id must be an MLU index >= 0, got {device_id!r}")
        check_options([a.name for a in attrs.fields(BuildOptions)], options, "cambricon")
        BuildOptions.from_mapping(options)
        super().__init__(device_id=device_id, **options)

    @classmethod
    def available(cls) -> Availability:
        try:
            import magicmind.python.runtime as mm
        except ImportError as exc:
            return Availability(
                False,
                f"the MagicMind Python module 'magicmind.python.runtime' is not importable ({exc}); run inside "
                "Cambricon's MagicMind docker image (see docs/plugins/cambricon.md)",
            )
        try:
            with mm.System() as system:
                count = int(system.device_count())
        except Exception as exc:  # noqa: BLE001 - any driver failure means unavailable
            return Availability(
                False, f"MagicMind is installed but cannot query MLUs ({exc}); is the Cambricon driver loaded?"
            )
        if count < 1:
            return Availability(
                False, "MagicMind is installed but no MLU was found (cnmon lists none); check the driver"
            )
        return Availability(True)

    @classmethod
    def version(cls) -> str | None:
        try:
            import magicmind.python.runtime as mm
        except ImportError:
            return None
        return f"magicmind {getattr(mm, '__version__', 'unknown')}"

    def cache_key(self) -> str:
        build = {k: v for k, v in self.options.items() if k != "device_id"}
        return f"{self.name}-{self.version()}-{sorted(build.items())!r}"

    def compile(self, request: CompileRequest) -> Path:
        check_options([a.name for a in attrs.fields(BuildOptions)], request.options, "cambricon", "compile")
        merged = {**self.options, **dict(request.options)}
        return build_from_onnx(request, BuildOptions.from_mapping(merged))

    def load(self, artefact: Path) -> Session:
        from facelib_cambricon.session import MagicMindSession

        return MagicMindSession(Path(artefact), self.options["device_id"])
