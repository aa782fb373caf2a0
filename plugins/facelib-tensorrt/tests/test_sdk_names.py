"""Every TensorRT / cuda-bindings name the plugin or its doubles use exists in the real package.

The name lists in ``sdk_names/`` are read out of the real wheels by ``sdk_names/regenerate.py``
(``tensorrt-cu12-bindings`` 10.16.1 for TensorRT 10, ``tensorrt-cu13-bindings`` 11.4.0 for
TensorRT 11, ``cuda-bindings`` 13.5.0).  A double that offers a name the real package of its
version lacks (TensorRT 11 has no ``int8_calibrator``) would let the plugin pass here and fail
on a real GPU; so would a plugin reaching for such a name through ``getattr``/``hasattr``.
The lists hold names, not their owners: a name is checked to exist in the package, not on
which class.
"""

from __future__ import annotations

import ast
import enum
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest
from trt_double_env import activated

HERE = Path(__file__).resolve().parent
NAMES = HERE / "sdk_names"
PLUGIN = HERE.parent / "facelib_tensorrt"
DOUBLE_CUDA = HERE / "doubles" / "cuda" / "bindings" / "runtime.py"


def _real(filename: str) -> set[str]:
    """The names a listed package has: each listed string and every end of one, since the linker
    may keep a name only as the tail of a longer string (``Runtime`` in ``IRuntime``)."""
    lines = (NAMES / filename).read_text().splitlines()
    entries = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    return {entry[i:] for entry in entries for i in range(len(entry)) if entry[i].isalpha() or entry[i] == "_"}


def _public(names: Any) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def _surface(module: Any) -> set[str]:
    """Public names a double module offers: top-level, class members, enum members, instance fields."""
    out: set[str] = set()
    for name, value in vars(module).items():
        if name.startswith("_") and name != "__version__":
            continue
        foreign = inspect.ismodule(value) or getattr(value, "__module__", module.__name__) != module.__name__
        if foreign and not isinstance(value, enum.Enum):
            continue  # imported helpers (numpy, typing, ...)
        out.add(name)
        if isinstance(value, type):
            for klass in value.__mro__:
                if klass.__module__ == module.__name__:
                    out |= _public(vars(klass))
            if issubclass(value, enum.Enum):
                out |= {m.name for m in value}
            try:  # instance fields set in __init__ (int8_calibrator, engine_host_code_allowed, ...)
                instance = value(*[None] * (len(inspect.signature(value).parameters)))
            except Exception:  # noqa: BLE001 - constructors needing real arguments are skipped
                continue
            out |= _public(vars(instance)) if hasattr(instance, "__dict__") else set()
    return out


@pytest.mark.parametrize(("version", "listing"), [("10.16.1", "tensorrt-10.txt"), ("11.1.0", "tensorrt-11.txt")])
def test_tensorrt_double_offers_only_real_names(version: str, listing: str) -> None:
    real = _real(listing)
    with activated(version=version):
        import tensorrt

        offered = _surface(tensorrt)
    missing = sorted(offered - real)
    assert not missing, f"the TensorRT {version} double offers names the real {listing} lacks: {missing}"
    assert len(offered) > 100  # the surface was really collected


def test_tensorrt_11_lacks_the_removed_precision_api() -> None:
    """The lists themselves: what TensorRT 11 removed is absent there and in the 11 double."""
    ten, eleven = _real("tensorrt-10.txt"), _real("tensorrt-11.txt")
    # (INT8 is no check: BuilderFlag.INT8 is gone, DataType.INT8 stays -- the lists carry no owners)
    removed = {"int8_calibrator", "IInt8EntropyCalibrator2", "EXPLICIT_BATCH", "set_calibration_profile"}
    assert removed <= ten and not removed & eleven
    assert {"engine_host_code_allowed", "STRONGLY_TYPED", "execute_async_v3", "set_tensor_address"} <= ten & eleven
    with activated(version="11.1.0"):
        import tensorrt

        assert not removed & _surface(tensorrt)


def _plugin_names() -> dict[str, set[str]]:
    """Names the plugin reaches on TensorRT/CUDA objects: ``trt.X.Y`` chains and string names
    given to ``getattr``/``hasattr``/``_call`` (its optional lookups)."""
    chains: set[str] = set()
    looked_up: set[str] = set()
    for path in PLUGIN.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                root = node
                parts = []
                while isinstance(root, ast.Attribute):
                    parts.append(root.attr)
                    root = root.value
                base = root.id if isinstance(root, ast.Name) else getattr(root, "attr", "")
                if base in ("trt", "_trt", "tensorrt"):
                    chains |= set(parts)
            lookup = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr", "_call")
                and len(node.args) >= 2
            )
            if lookup:
                arg = node.args[1]  # type: ignore[attr-defined]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value[:1] != "_":
                    looked_up.add(arg.value)
    return {"chains": chains, "looked_up": looked_up}


def test_plugin_uses_only_names_some_real_tensorrt_has() -> None:
    real = _real("tensorrt-10.txt") | _real("tensorrt-11.txt") | _real("cuda-runtime-13.txt")
    used = _plugin_names()
    assert "BuilderFlag" in used["chains"] and "int8_calibrator" in used["looked_up"]
    python_only = {"__version__", "name"}  # module attribute / enum member attribute
    missing = sorted((used["chains"] | used["looked_up"]) - real - python_only)
    assert not missing, f"facelib_tensorrt uses names no real TensorRT/cuda-bindings has: {missing}"


def test_cuda_double_offers_only_real_names() -> None:
    real = _real("cuda-runtime-13.txt")
    sys.path.insert(0, str(DOUBLE_CUDA.parent))
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("cuda_runtime_double", DOUBLE_CUDA)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["cuda_runtime_double"] = module
        spec.loader.exec_module(module)
        offered = _surface(module)
    finally:
        sys.path.remove(str(DOUBLE_CUDA.parent))
        sys.modules.pop("cuda_runtime_double", None)
    missing = sorted(offered - real)
    assert not missing, f"the cuda-bindings double offers names cuda-bindings 13.5 lacks: {missing}"
    assert {"cudaMalloc", "cudaMemcpyAsync", "cudaStreamCreate", "cudaErrorIllegalAddress"} <= offered


def test_real_cuda_bindings_when_installed() -> None:
    """With the real cuda-bindings installed (it imports without a GPU), compare it directly."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        pytest.skip("cuda-bindings is not installed (pip install cuda-bindings to run this check)")
    if "doubles" in str(getattr(runtime, "__file__", "")):
        pytest.skip("the cuda-bindings double is active")
    for name in ("cudaMalloc", "cudaFree", "cudaMemcpyAsync", "cudaStreamCreate", "cudaStreamSynchronize"):
        assert hasattr(runtime, name)
    err, _count = runtime.cudaGetDeviceCount()
    assert isinstance(err, runtime.cudaError_t)
