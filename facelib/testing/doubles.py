"""Putting a backend plugin's vendor-SDK test doubles in place, and taking them away again.

A plugin's doubles are importable stand-ins for its vendor SDK modules (``tensorrt``,
``ais_bench``, ``sophon.sail``, ``magicmind``...) kept in its test folder.  Each plugin's tests
offer one *activator*: a context manager ``activate(workdir, **activation)`` inside which the
backend is taken by name (``facelib.get_backend(name)``) and runs on the doubles; only the SDK
modules differ from a machine with the device.  :func:`sdk_doubles` does the part every
activator shares; :func:`use_checkout` makes the tests import the plugin beside them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Literal

from facelib.backends.base import Backend
from facelib.backends.registry import BackendInfo


def forget_modules(names: Iterable[str]) -> None:
    """Drop every imported module whose top-level package is in ``names`` (doubles and hidden
    entries alike), so the next import finds whatever is on ``sys.path`` then."""
    tops = set(names)
    for name in [m for m in sys.modules if m.split(".")[0] in tops]:
        del sys.modules[name]


def load_module(path: Path, name: str) -> ModuleType:
    """Import the module file ``path`` as ``name`` without putting its folder on ``sys.path``
    (a doubles folder must not stay importable outside its activator); imported once."""
    module = sys.modules.get(name)
    if module is not None and Path(getattr(module, "__file__", "") or "").resolve() == Path(path).resolve():
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def use_checkout(plugin_root: Path, package: str) -> None:
    """Import ``package`` from ``plugin_root`` (the plugin beside the tests), even when another copy
    is pip-installed (an editable install of a different tree): its folder goes first on
    ``sys.path``, copies imported from elsewhere are forgotten, and the backend registry reloads
    (entry points loaded earlier may hold the other copy's classes)."""
    from facelib.backends import reload_plugins

    root = Path(plugin_root).resolve()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        module_file = getattr(sys.modules[name], "__file__", None)
        if module_file is None or root not in Path(module_file).resolve().parents:
            del sys.modules[name]
    reload_plugins()


def register_if_missing(classes: Iterable[type[Backend]], origin: str) -> None:
    """Register backend ``classes`` by hand when their entry point is not installed (a source
    checkout); the registry is reloaded first so an installed entry point wins."""
    from facelib.backends import backend_class, register_backend, reload_plugins
    from facelib.errors import BackendNotFoundError

    reload_plugins()
    for cls in classes:
        try:
            backend_class(cls.name)
        except BackendNotFoundError:
            register_backend(cls, origin=origin)


@contextlib.contextmanager
def sdk_doubles(
    folder: Path,
    modules: Iterable[str],
    env: Mapping[str, str] | None = None,
    place: Literal["first", "last", "none"] = "first",
    hide: Iterable[str] = (),
    home: bool = True,
) -> Iterator[None]:
    """Make the doubles in ``folder`` importable for the duration; undo everything afterwards.

    ``modules``: top-level names of the doubles (forgotten before and after, so nothing imported
    inside leaks out).  ``env``: environment variables the doubles read.  ``place``: where
    ``folder`` goes on ``sys.path`` (``"none"`` simulates a machine without the SDK;
    ``"last"`` keeps helper modules importable without shadowing a real SDK).  ``hide``: module
    names that must fail to import (set to None in ``sys.modules``).  ``home``: point
    ``FACELIB_HOME`` at a temporary folder unless it is already set, so compiled artefacts and
    caches stay out of the user's cache.  On exit ``sys.path`` and the environment are restored
    as they were and the backend registry is reloaded.
    """
    from facelib.backends import reload_plugins

    names = list(modules)
    saved_path, saved_env = list(sys.path), dict(os.environ)
    scratch = (
        tempfile.TemporaryDirectory(prefix="facelib-home-") if home and not os.environ.get("FACELIB_HOME") else None
    )
    forget_modules(names)
    try:
        if scratch is not None:
            os.environ["FACELIB_HOME"] = scratch.name
        if place == "first":
            sys.path.insert(0, str(folder))
        elif place == "last":
            sys.path.append(str(folder))
        for name in hide:
            sys.modules[name] = None  # type: ignore[assignment]  # import -> ImportError
        os.environ.update(env or {})
        yield
    finally:
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)
        forget_modules([*names, *hide])
        reload_plugins()
        if scratch is not None:
            scratch.cleanup()


def write_executable(path: Path, text: str) -> Path:
    """Write an executable script (a shim running a double in place of a vendor tool)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def entry_point_installed(folder: Path, distribution: str, name: str, module: str) -> Iterator[list[BackendInfo]]:
    """As if ``distribution`` 0.1.0 were pip-installed declaring the ``facelib.backends`` entry point
    ``name = module``: a ``.dist-info`` in ``folder``, put on ``sys.path``; yields the registry's
    :class:`~facelib.backends.BackendInfo` entries named ``name`` (several when another copy is
    installed too).  ``sys.path`` and the registry are restored afterwards."""
    from facelib.backends import list_backends, reload_plugins

    dist = Path(folder) / f"{distribution.replace('-', '_')}-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(f"[facelib.backends]\n{name} = {module}\n")
    sys.path.insert(0, str(folder))
    reload_plugins()
    try:
        yield [b for b in list_backends() if b.name == name]
    finally:
        sys.path.remove(str(folder))
        reload_plugins()
