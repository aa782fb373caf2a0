"""The ``sophon`` backend: TPU-MLIR compiles ONNX to bmodel, SOPHON SAIL runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import attrs

from facelib.backends.base import Availability, Backend, CompileRequest, Session, check_options
from facelib.errors import InputError
from facelib_sophon.compiler import SophonCompileOptions, compile_onnx

_SAIL_DISTRIBUTIONS = ("sophon", "sophon_arm", "sophon_arm_pcie", "sophon-arm", "sophon-arm-pcie")


class SophonBackend(Backend):
    """Sophgo TPU (BM1684X, BM1688, BM1690, CV186X) through SOPHON SAIL.

    Options
    -------
    device_id:
        TPU id (``bm-smi``), default 0.
    graph:
        Which model (graph family) of a combined bmodel to run; default: the only one.
    chip, quantize, dynamic, stages, model_name, calibration_count, asymmetric, tolerance,
    tools_dir, keep_workdir, transform_args, deploy_args:
        Compile options, see :class:`facelib_sophon.compiler.SophonCompileOptions`.
    """

    name: ClassVar[str] = "sophon"
    formats: ClassVar[tuple[str, ...]] = (".bmodel",)
    priority: ClassVar[int] = 250

    def __init__(self, device_id: int = 0, graph: str | None = None, **options: Any) -> None:
        if not isinstance(device_id, int) or device_id < 0:
            raise InputError(f"device_id must be a TPU index >= 0, got {device_id!r}")
        check_options([a.name for a in attrs.fields(SophonCompileOptions)], options, "sophon")
        super().__init__(device_id=device_id, graph=graph, **options)

    @classmethod
    def available(cls) -> Availability:
        try:
            import sophon.sail as sail
        except (ImportError, OSError) as exc:  # OSError: libsophon's shared libraries missing
            return Availability(
                False,
                f"the SOPHON SAIL Python module 'sophon.sail' is not importable ({exc}); install the sophon "
                "wheel built for your libsophon/SDK (see docs/plugins/sophon.md)",
            )
        try:
            count = int(sail.get_available_tpu_num())
        except Exception as exc:  # noqa: BLE001 - any driver failure means unavailable
            return Availability(
                False, f"sophon.sail is installed but cannot query TPUs ({exc}); is the libsophon driver loaded?"
            )
        if count < 1:
            return Availability(
                False, "sophon.sail is installed but no TPU was found (bm-smi lists none); check the driver"
            )
        return Availability(True)

    @classmethod
    def version(cls) -> str | None:
        from importlib import metadata

        for dist in _SAIL_DISTRIBUTIONS:
            try:
                return f"sail {metadata.version(dist)}"
            except metadata.PackageNotFoundError:
                continue
        try:
            import sophon.sail as sail
        except ImportError:
            return None
        return f"sail {getattr(sail, '__version__', 'unknown')}"

    def cache_key(self) -> str:
        """Changes with the compiler (TPU-MLIR) version, the SAIL version and the compile options."""
        from importlib import metadata

        try:
            compiler = metadata.version("tpu_mlir")
        except metadata.PackageNotFoundError:
            compiler = "unknown"
        ignored = ("device_id", "graph", "tools_dir", "keep_workdir")
        compile_options = {k: v for k, v in self.options.items() if k not in ignored}
        return f"{self.name}-{self.version()}-tpu_mlir {compiler}-{sorted(compile_options.items())!r}"

    def compile(self, request: CompileRequest) -> Path:
        check_options([a.name for a in attrs.fields(SophonCompileOptions)], request.options, "sophon", "compile")
        merged = {**{k: v for k, v in self.options.items() if k not in ("device_id", "graph")}, **dict(request.options)}
        return compile_onnx(request, SophonCompileOptions.from_mapping(merged))

    def load(self, artefact: Path) -> Session:
        from facelib_sophon.session import SophonSession

        return SophonSession(Path(artefact), self.options["device_id"], self.options.get("graph"))
