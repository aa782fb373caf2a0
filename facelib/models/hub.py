"""The model hub: get a ready model package by name (fetch, verify, convert, cache).

``ensure_package("fsanet")`` returns the directory of a model package in the cache, building it
on first use: the upstream artefacts are fetched and verified (:mod:`facelib.models.fetch`), the
package's converter (an import string in :mod:`facelib.models.registry`) writes the package into
a temporary directory, the result is validated against its card, a provenance record
(``hub.json``: artefacts with sha256 and origin, converter, options, facelib version, time) is
written beside the card, and the directory is renamed into place.  A later call is a cache hit:
two small JSON reads, no network, no conversion.

Cache layout (root: :func:`facelib.models.cache.cache_dir`, ``$FACELIB_HOME``)::

    downloads/models/<family>/<file>   verified upstream files, laid out like a mirror
    packages/<name>/facelib.json       model packages (card, ONNX files, hub.json)
    locks/                             inter-process lock files

Security: converters load torch checkpoints with ``torch.load(..., weights_only=True)`` (never a
full unpickle of a downloaded file); archives are extracted with :func:`safe_extract`, which
cannot write outside its target.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from facelib.errors import ConversionError, FacelibError, MissingDependencyError, ModelCardError, ModelError
from facelib.io.atomic import replace_directory
from facelib.models.archive import ArchiveError, safe_extract, safe_extract_tar, safe_extract_zip
from facelib.models.bundled import BUNDLED_ENV, BUNDLED_MODELS, bundled_dir
from facelib.models.cache import cache_dir
from facelib.models.card import CARD_FILENAME
from facelib.models.fetch import (
    DownloadError,
    LicenceNotAcceptedError,
    cached_path,
    copy_into_cache,
    fetch_artefact,
    file_lock,
    resolve_mirror,
    resolve_offline,
)
from facelib.models.package import ModelPackage
from facelib.models.registry import PACKAGES as _PACKAGES
from facelib.models.registry import Artefact, PackageSpec, get_artefact, get_package

__all__ = [
    "PROVENANCE_FILENAME",
    "ArchiveError",
    "DownloadError",
    "ModelInfo",
    "ensure_package",
    "list_models",
    "package_path",
    "packages_dir",
    "remove",
    "resolve_model",
    "resolve_package",
    "safe_extract",
    "safe_extract_tar",
    "safe_extract_zip",
]

#: Provenance record written beside the card of every package the hub builds.
PROVENANCE_FILENAME = "hub.json"


def packages_dir() -> Path:
    """``<cache>/packages``: one directory per model package."""
    return cache_dir() / "packages"


def _target(name: str) -> Path:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ModelError(f"invalid model name {name!r}")
    return packages_dir() / name


def _installed(spec: PackageSpec, target: Path) -> bool:
    """A built package whose recipe equals the registry's (cheap: two small files)."""
    try:
        record = json.loads((target / PROVENANCE_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (target / CARD_FILENAME).is_file() and record.get("recipe") == _jsonable(spec.recipe())


def _bundled(spec: PackageSpec) -> Path | None:
    """The ready package shipped in ``facelib-models`` (:mod:`facelib.models.bundled`), if current."""
    path = bundled_dir(spec.name)
    return path if path is not None and _installed(spec, path) else None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _missing_modules(modules: tuple[str, ...]) -> list[str]:
    missing = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def _prebuilt_available(spec: PackageSpec, mirror: str | Path | None) -> bool:
    """Whether every prebuilt file is in the cache or a mirror can be asked for it."""
    if not spec.prebuilt:
        return False
    if mirror is not None:
        return True
    return all(cached_path(get_artefact(n)).is_file() for n in spec.prebuilt.values())


def _require_modules(spec: PackageSpec, modules: tuple[str, ...], *, use_prebuilt: bool) -> None:
    """Raise MissingDependencyError (before any download) when the converter cannot run here."""
    missing = _missing_modules(modules)
    if not missing:
        return
    hints = []
    if spec.prebuilt and not use_prebuilt:
        paths = ", ".join(get_artefact(n).mirror_path for n in spec.prebuilt.values())
        hints.append(f"point --mirror / $FACELIB_MIRROR at a mirror holding its prebuilt ONNX files ({paths})")
    if spec.name in BUNDLED_MODELS:
        hints.append(
            f"use the ready {spec.name!r} of the facelib-models distribution "
            f"(pip install facelib-models; {BUNDLED_ENV} unset; no --force)"
        )
    raise MissingDependencyError(
        missing[0], "convert", f"Building model {spec.name!r} from its upstream files", alternative=", or ".join(hints)
    )


def _load_converter(spec: PackageSpec) -> Any:
    if not isinstance(spec.converter, str):
        return spec.converter
    module_name, _, attr = spec.converter.partition(":")
    try:
        module = importlib.import_module(module_name)
    except MissingDependencyError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ConversionError(
                f"model {spec.name!r}: its converter {spec.converter!r} is not part of this facelib installation"
            ) from exc
        raise MissingDependencyError(exc.name or "?", "convert", f"Converting {spec.name!r}") from exc
    try:
        return getattr(module, attr or "build_package")
    except AttributeError:
        raise ConversionError(f"model {spec.name!r}: {module_name} has no {attr!r}") from None


def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"facelib: {message}", file=sys.stderr)


def ensure_package(
    name: str,
    *,
    offline: bool | None = None,
    progress: bool = True,
    mirror: str | os.PathLike[str] | None = None,
    accept_licence: bool = False,
    allow_unverified: bool = False,
    prebuilt: bool | None = None,
    files: Mapping[str, str | os.PathLike[str]] | None = None,
    force: bool = False,
) -> Path:
    """Path of the model package ``name``, fetched, converted and cached on first use.

    Parameters
    ----------
    name:
        A registry name (``facelib models list``), e.g. ``"fsanet"``, ``"fomm-vox-256"``.
    offline:
        Never use the network (default ``$FACELIB_OFFLINE``); files must be in the cache or a
        local-directory mirror.
    progress:
        Announce licences and steps on stderr and draw progress bars on a terminal.
    mirror:
        Local directory or ``http(s)`` base URL laid out like ``shared/assets``
        (default ``$FACELIB_MIRROR``).
    accept_licence:
        Accept the licence of non-commercial artefacts (FaceFormer, FOMM).  Without it (or
        ``$FACELIB_ACCEPT_LICENCE``) downloading them raises ``LicenceNotAcceptedError``.
    allow_unverified:
        Accept artefacts whose sha256 upstream never published (their sha256 is recorded).
    prebuilt:
        Use prebuilt ONNX files from the mirror instead of converting (None: when a mirror is set
        or they are cached; True: require them; False: always convert the upstream files).
    files:
        Source role -> a file you downloaded by hand (e.g. ``{"checkpoint": "~/vox-cpk.pth.tar"}``);
        checked like a download and copied into the cache.
    force:
        Rebuild even when the package is cached.

    Returns
    -------
    Path
        The package directory, loadable with ``ModelPackage.load``: the ready package shipped in
        ``facelib-models`` when there is a current one (:mod:`facelib.models.bundled`; not with
        ``force``, ``prebuilt`` or ``files``, which ask for a build), else ``<cache>/packages/<name>``.

    Raises
    ------
    ModelError
        Unknown name.  ``DownloadError`` (incl. ``LicenceNotAcceptedError``) when an artefact
        cannot be fetched or verified; ``MissingDependencyError`` when conversion needs the
        ``convert`` extra and no prebuilt files are available; ``ConversionError`` when the
        converter fails.
    """
    spec = get_package(name)
    target = _target(name)
    bundled = _bundled(spec) if not force and files is None and prebuilt is None else None
    if bundled is not None:
        return bundled
    if not force and _installed(spec, target):
        return target
    offline = resolve_offline(offline)
    resolved_mirror = resolve_mirror(mirror)
    if prebuilt is None:
        use_prebuilt = _prebuilt_available(spec, resolved_mirror)
    else:
        use_prebuilt = bool(prebuilt)
        if use_prebuilt and not spec.prebuilt:
            raise ModelError(f"model {name!r} has no prebuilt files; omit prebuilt=True")
    try:
        packages_dir().mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot create the facelib cache {packages_dir()}: {exc}; set FACELIB_HOME to a writable directory"
        ) from exc
    with file_lock(cache_dir() / "locks" / f"package-{name}.lock"):
        if not force and _installed(spec, target):  # built by another process while we waited
            return target
        converter = _load_converter(spec)  # before any download: a missing converter fails fast
        upstream = spec.artefacts(use_prebuilt=False)
        for role, path in (files or {}).items():
            if role not in upstream:
                raise ModelError(f"model {name!r} has no source role {role!r}; its roles are {sorted(upstream)}")
            copy_into_cache(upstream[role], Path(path), allow_unverified=allow_unverified)

        def fetch_all(roles: Mapping[str, Artefact]) -> dict[str, Path]:
            return {
                role: fetch_artefact(
                    artefact,
                    mirror=resolved_mirror,
                    offline=offline,
                    progress=progress,
                    accept_licence=accept_licence,
                    allow_unverified=allow_unverified,
                    accept_names=(name,),
                )
                for role, artefact in roles.items()
            }

        sources: dict[str, Path] | None = None
        roles = spec.artefacts(use_prebuilt=True) if use_prebuilt else upstream
        if use_prebuilt:
            _require_modules(spec, spec.prebuilt_needs, use_prebuilt=True)
            try:
                sources = fetch_all(roles)
            except DownloadError as exc:
                if prebuilt is not None or isinstance(exc, LicenceNotAcceptedError):
                    raise  # prebuilt files were asked for explicitly
                _say(progress, f"prebuilt files unavailable ({str(exc).splitlines()[0]}); converting instead")
                use_prebuilt, roles = False, upstream
        if sources is None:
            _require_modules(spec, spec.needs, use_prebuilt=False)
            sources = fetch_all(roles)
        if spec.non_commercial:
            _say(progress, f"model {name!r} is for non-commercial use only: {'; '.join(spec.licences)}")
        _say(progress, f"building model package {name!r} with {spec.recipe()['converter']}")
        _build(spec, converter, roles, sources, target, progress, resolved_mirror, use_prebuilt)
    return target


def _build(
    spec: PackageSpec,
    converter: Any,
    roles: Mapping[str, Artefact],
    sources: Mapping[str, Path],
    target: Path,
    progress: bool,
    mirror: str | Path | None,
    use_prebuilt: bool,
) -> None:
    from facelib._version import __version__
    from facelib.models.package import sha256_file

    work = Path(tempfile.mkdtemp(prefix=f".build-{spec.name}-", dir=packages_dir()))
    try:
        out = work / spec.name
        try:
            converter(dict(sources), out, progress=progress, **dict(spec.options))
        except FacelibError:
            raise
        except Exception as exc:  # a converter bug or an unexpected file: say which model
            raise ConversionError(f"converting model {spec.name!r} failed: {type(exc).__name__}: {exc}") from exc
        package = ModelPackage.load(out).check()
        record = {
            "name": spec.name,
            "task": spec.task,
            "recipe": _jsonable(spec.recipe()),
            "prebuilt": use_prebuilt,
            "artefacts": {
                role: {
                    "name": a.name,
                    "filename": a.filename,
                    "sha256": a.sha256 or sha256_file(sources[role]),
                    "verified": a.sha256 is not None,
                    "size": sources[role].stat().st_size,
                    "urls": list(a.urls),
                    "mirror_path": a.mirror_path,
                    "licence": a.licence,
                    "non_commercial": a.non_commercial,
                }
                for role, a in roles.items()
            },
            "mirror": str(mirror) if mirror is not None else None,
            "card_task": package.card.task,
            "facelib_version": __version__,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (out / PROVENANCE_FILENAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        replace_directory(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@attrs.frozen
class ModelInfo:
    """One registry entry as ``facelib models list`` shows it."""

    name: str
    task: str
    description: str
    licence: str
    non_commercial: bool
    manual: bool
    size: int | None
    prebuilt: bool
    path: Path | None

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        out["path"] = str(self.path) if self.path else None
        return out


def list_models() -> list[ModelInfo]:
    """Every registered model, with its licence, download size (bytes, None if unknown) and
    the path of its cached package (None when not built yet)."""
    infos = []
    for name in sorted(_PACKAGES):
        spec = _PACKAGES[name]
        sizes = [get_artefact(a).size for a in spec.sources.values()]
        target = _target(name)
        infos.append(
            ModelInfo(
                name=name,
                task=spec.task,
                description=spec.description,
                licence="; ".join(spec.licences),
                non_commercial=spec.non_commercial,
                manual=spec.manual,
                size=None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None),
                prebuilt=bool(spec.prebuilt),
                path=_bundled(spec) or (target if _installed(spec, target) else None),
            )
        )
    return infos


def package_path(name: str, *, must_exist: bool = True) -> Path:
    """Directory of the cached package ``name``; with ``must_exist`` a clear error if not built."""
    spec = get_package(name)
    target = _target(name)
    bundled = _bundled(spec)
    if bundled is not None:
        return bundled
    if must_exist and not _installed(spec, target):
        raise ModelError(f"model {name!r} is not in the cache ({target}); get it with 'facelib models fetch {name}'")
    return target


def remove(name: str, *, downloads: bool = False) -> bool:
    """Delete the cached package ``name`` (and, with ``downloads``, its downloaded sources).

    Returns True when something was removed.
    """
    spec = get_package(name)
    target = _target(name)
    removed = False
    with file_lock(cache_dir() / "locks" / f"package-{name}.lock"):
        if target.exists():
            trash = target.with_name(f".old-{name}-{uuid.uuid4().hex[:8]}")
            os.replace(target, trash)
            shutil.rmtree(trash, ignore_errors=True)
            removed = True
    if downloads:
        for artefact_name in {*spec.sources.values(), *spec.prebuilt.values()}:
            path = cached_path(get_artefact(artefact_name))
            for p in (path, path.with_name(path.name + ".part"), path.with_name(path.name + ".sha256")):
                if p.exists():
                    p.unlink()
                    removed = True
    return removed


def _looks_like_path(name: str) -> bool:
    return os.sep in name or "/" in name or name.startswith((".", "~")) or name.endswith(CARD_FILENAME)


def _fetch_hint(spec: PackageSpec) -> str:
    """How to get package ``spec`` by hand, for errors raised while building it."""
    convert = str(spec.converter).partition(":")[0].rpartition(".")[2] if isinstance(spec.converter, str) else ""
    steps = [f"'facelib models fetch {spec.name}'" + (" --accept-licence" if spec.non_commercial else "")]
    if spec.manual:
        role = next(iter(spec.sources), "checkpoint")
        steps.append(f"--file {role}=PATH with a file you downloaded, or --mirror DIR|URL")
    hint = f"get it with {' '.join(steps)}"
    if convert:
        hint += f", or convert it yourself with 'facelib convert {convert} ...' and pass the package directory"
    return hint


def _tasks(task: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return () if task is None else (task,) if isinstance(task, str) else tuple(task)


def resolve_model(model: str | os.PathLike[str], *, task: str | tuple[str, ...] | None = None, **options: Any) -> Path:
    """The model package directory for ``model``: a path, or a hub name fetched when needed.

    An existing path (package directory or its ``facelib.json``) is returned as given.  A registry
    name is checked against ``task`` (a card ``task`` such as ``"head_pose"``, or a tuple of tasks
    any of which will do) *before* anything is
    downloaded, then passed to :func:`ensure_package` with ``options`` (``offline``, ``mirror``,
    ``progress``, ``accept_licence``...); when that fails, the error says how to fetch or convert
    the package by hand.  Anything else is a :class:`ModelError` naming both possibilities.
    """
    path = Path(model).expanduser()
    if path.exists():
        return path
    name = os.fspath(model)
    spec = _PACKAGES.get(name)
    wanted = _tasks(task)
    what = " or ".join(repr(t) for t in wanted)
    fitting = sorted(n for n, s in _PACKAGES.items() if not wanted or s.task in wanted)
    if spec is None:
        if _looks_like_path(name):
            raise ModelError(f"model package not found: {name}")
        raise ModelError(
            f"{name!r} is neither a model package path nor a known model name; known "
            f"{what + ' ' if wanted else ''}models: {', '.join(fitting)} (see 'facelib models list')"
        )
    if wanted and spec.task not in wanted:
        raise ModelError(
            f"model {name!r} is a {spec.task!r} model, not a {what} model; {what} models: {', '.join(fitting)}"
        )
    try:
        return ensure_package(name, **options)
    except DownloadError as exc:
        raise type(exc)(f"{exc}\nmodel {name!r} is not in the cache; {_fetch_hint(spec)}") from exc


def resolve_package(
    model: str | os.PathLike[str] | ModelPackage, *, task: str | tuple[str, ...] | None = None, **options: Any
) -> ModelPackage:
    """A loaded :class:`~facelib.models.package.ModelPackage` for a path, a hub name or a package.

    The one way tasks, CLI commands and tools turn "a path or a name" into a model: see
    :func:`resolve_model` for names and ``options``; the card's task must equal ``task`` (when
    given), else :class:`~facelib.errors.ModelCardError`.
    """
    package = (
        model if isinstance(model, ModelPackage) else ModelPackage.load(resolve_model(model, task=task, **options))
    )
    wanted = _tasks(task)
    if wanted and package.card.task not in wanted:
        what = " or ".join(repr(t) for t in wanted)
        raise ModelCardError(f"{package.root} is a {package.card.task!r} model, not a {what} model")
    return package
