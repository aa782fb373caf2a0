"""ais_bench / aclruntime names: the doubles offer only what the real sources bind, and the
plugin calls only what *both* ais_bench generations have (issue 18: the 2023 Ascend/tools
InferSession and the msit-era one).

``sdk_names/*.txt`` come from ``sdk_names/regenerate_ais_bench.py`` (Ascend/tools @ 9d6da90,
mjlovesz/sync-ait @ c432ed56a).
"""

from __future__ import annotations

import ast
import enum
import inspect
from pathlib import Path

import pytest
from ascend_double_env import activated

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parent / "facelib_ascend"


def _names(filename: str) -> set[str]:
    lines = (HERE / "sdk_names" / filename).read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _surface(module: object) -> set[str]:
    out: set[str] = set()
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if getattr(value, "__module__", module.__name__) != module.__name__:  # type: ignore[attr-defined]
            continue
        out.add(name)
        if isinstance(value, type):
            out |= {n for n in vars(value) if not n.startswith("_")}
            if issubclass(value, enum.Enum):
                out |= {m.name for m in value}
    return out


def test_aclruntime_double_offers_only_bound_names() -> None:
    real = _names("aclruntime-2023.txt") | _names("aclruntime-msit.txt")
    with activated():
        import aclruntime

        offered = _surface(aclruntime)
    missing = sorted(offered - real)
    assert not missing, f"the aclruntime double offers names neither aclruntime binds: {missing}"
    assert {"InferenceSession", "set_dynamic_batchsize", "tensor_desc", "float32"} <= offered


@pytest.mark.parametrize(("api", "listing"), [("msit", "ais_bench-msit.txt"), ("tools-2023", "ais_bench-2023.txt")])
def test_infer_session_double_matches_its_generation(api: str, listing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELIB_AIS_BENCH_DOUBLE_API", api)
    with activated():
        from ais_bench.infer import interface

        offered = {n for n in vars(interface.InferSession) if not n.startswith("_")}
    missing = sorted(offered - _names(listing))
    assert not missing, f"the {api} InferSession double offers methods that generation lacks: {missing}"


def test_plugin_calls_only_what_both_generations_have() -> None:
    both = _names("ais_bench-2023.txt") & _names("ais_bench-msit.txt")
    calls: set[str] = set()
    for node in ast.walk(ast.parse((PLUGIN / "backend.py").read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "session":
            calls.add(node.attr)  # session = self._session in _prepare
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "_session":
            calls.add(node.attr)
    assert {"set_dynamic_batchsize", "set_dynamic_shape", "run", "get_inputs"} <= calls
    assert "infer" not in calls  # infer(mode=...) differs between the generations
    missing = sorted(calls - both)
    assert not missing, f"facelib_ascend calls InferSession methods one generation lacks: {missing}"
