"""Distribution metadata (issue 17): requirements by name, one onnxruntime build per runtime extra.

The end-to-end check (build, twine, install from wheels and sdists in fresh venvs) is
scripts/check_dist.sh, run by scripts/test.sh; these tests keep its inputs honest and fast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import facelib
from facelib.backends import ort_build
from facelib.backends.onnxruntime import OnnxRuntimeBackend
from facelib.testing.doubles import load_module

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
PROJECTS = [ROOT, ROOT / "models", *PLUGINS, ROOT / "examples" / "plugins" / "facelib-onnx-reference"]


def _project(path: Path) -> dict:
    return tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _requirements(project: dict) -> list[str]:
    extras = project.get("optional-dependencies", {}).values()
    return [*project.get("dependencies", []), *(r for rs in extras for r in rs)]


def _load_checker():
    return load_module(ROOT / "scripts" / "check_dist_files.py", "check_dist_files")


def test_eight_distributions_one_version() -> None:
    names = [_project(p)["name"] for p in PROJECTS]
    assert sorted(names) == sorted(_load_checker().DISTRIBUTIONS)
    assert {_project(p)["version"] for p in PROJECTS} == {facelib.__version__}
    for path in PROJECTS:
        assert (path / _project(path)["readme"]).is_file(), f"{path}: twine check needs a readme"


@pytest.mark.parametrize("path", PROJECTS, ids=lambda p: p.name)
def test_requirements_are_by_name_and_versioned(path: Path) -> None:
    for requirement in _requirements(_project(path)):
        name_part = requirement.split(";")[0]
        assert "@" not in name_part and "{root" not in name_part, f"{path.name}: {requirement}"
        if name_part.startswith("facelib"):
            assert re.search(r"(==|>=)", name_part), f"{path.name}: unversioned {requirement}"


def test_plugins_and_core_pin_each_other() -> None:
    core = _project(ROOT)
    extras = core["optional-dependencies"]
    for plugin in PLUGINS:
        project = _project(plugin)
        extra = project["name"].removeprefix("facelib-")
        assert extras[extra] == [f"{project['name']}=={project['version']}"]
        assert "facelib>=0.1,<0.2" in project["dependencies"]


def test_exactly_one_onnxruntime_build_is_possible() -> None:
    """No distribution depends on an onnxruntime build; each runtime extra brings exactly one."""
    build = re.compile(r"^onnxruntime(-[a-z]+)?\b")
    for path in PROJECTS:
        deps = _project(path).get("dependencies", [])
        assert not [d for d in deps if build.match(d)], f"{path.name} hard-depends on an onnxruntime build"
    extras = _project(ROOT)["optional-dependencies"]
    for extra, dist in ort_build.RUNTIME_EXTRAS.items():
        assert [re.split(r"[<>=!~;\[ ]", r)[0] for r in extras[extra]] == [dist]
    for extra, reqs in extras.items():
        if extra not in ort_build.RUNTIME_EXTRAS:
            assert not [r for r in reqs if build.match(r)], f"extra {extra!r} brings an onnxruntime build"
    assert _load_checker().RUNTIMES == ort_build.RUNTIME_EXTRAS


def test_development_install_covers_every_distribution_but_the_test_plugin() -> None:
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements-dev.txt").read_text().splitlines()]
    paths = {ln.removeprefix("-e ").split("[")[0].rstrip("/") for ln in lines if ln}
    expected = {"."} | {"./" + p.relative_to(ROOT).as_posix() for p in PROJECTS if p != ROOT}
    assert paths == expected
    assert not any("broken" in ln for ln in lines)


def test_report_check_counts_onnxruntime_builds(tmp_path: Path) -> None:
    checker = _load_checker()

    def report(*names: str) -> Path:
        path = tmp_path / "report.json"
        path.write_text(json.dumps({"install": [{"metadata": {"name": n, "version": "1"}} for n in names]}))
        return path

    checker.check_report(report("facelib", "onnxruntime-gpu", "onnxruntime-extensions", "numpy"), "cuda")
    with pytest.raises(SystemExit):
        checker.check_report(report("facelib", "onnxruntime", "onnxruntime-gpu"), "cuda")
    with pytest.raises(SystemExit):
        checker.check_report(report("facelib", "numpy"), "cpu")


def test_backends_names_the_build_and_its_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    availability = OnnxRuntimeBackend.available()
    assert availability.ok
    for provider in onnxruntime.get_available_providers():
        assert provider in availability.reason
    monkeypatch.setattr(ort_build, "installed_distributions", lambda: ("onnxruntime-gpu 1.31.1",))
    ok, text = ort_build.describe(["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert ok and text == "onnxruntime-gpu 1.31.1; execution providers: CUDAExecutionProvider, CPUExecutionProvider"
    monkeypatch.setattr(ort_build, "installed_distributions", lambda: ("onnxruntime 1.32.0", "onnxruntime-gpu 1.31.1"))
    ok, text = ort_build.describe(["CPUExecutionProvider"])
    assert not ok and "pip uninstall -y onnxruntime onnxruntime-gpu" in text


def test_missing_onnxruntime_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ort(name: str, *args: object, **kwargs: object) -> object:
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    monkeypatch.setattr(ort_build, "installed_distributions", lambda: ())
    availability = OnnxRuntimeBackend.available()
    assert not availability.ok
    assert "pip install 'facelib[cpu]'" in availability.reason and "facelib[cuda]" in availability.reason


def test_installed_distributions_sees_this_environment() -> None:
    ort_build.installed_distributions.cache_clear()
    dists = ort_build.installed_distributions()
    assert len(dists) == 1 and dists[0].split()[0] in ort_build.RUNTIME_EXTRAS.values()
