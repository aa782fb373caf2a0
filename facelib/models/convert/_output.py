"""Converters write whole packages: built aside, then swapped into place.

Converting into a folder that already holds a package replaced it file by file before, so an
older conversion's extra files (another variant, a compiled-artefact cache, a renamed ONNX)
stayed mixed in, and an interrupted conversion left half a package.  :func:`writes_whole_package`
wraps a converter's ``build_package(sources, output_dir, ...)``: it builds into a hidden sibling
folder and moves it onto ``output_dir`` only when the converter finished, replacing an existing
package as a whole.  A non-empty folder that is not a model package is refused, never deleted.
"""

from __future__ import annotations

import functools
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Concatenate, ParamSpec

from facelib.errors import InputError
from facelib.io.atomic import replace_directory
from facelib.models.card import CARD_FILENAME
from facelib.models.package import ModelPackage

P = ParamSpec("P")
Builder = Callable[Concatenate[Mapping[str, Path], Path, P], ModelPackage]


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} exists and is a file; converters write a package folder")
    if target.is_dir() and any(target.iterdir()) and not (target / CARD_FILENAME).is_file():
        raise InputError(
            f"{target} is a folder with files but not a model package (no {CARD_FILENAME}); "
            "give a new folder name (facelib replaces only folders that hold a package)"
        )


def writes_whole_package(build: Builder[P]) -> Builder[P]:
    """Decorate ``build_package`` so ``output_dir`` ends up holding exactly the new package."""

    @functools.wraps(build)
    def wrapper(sources: Mapping[str, Path], output_dir: Path, /, *args: P.args, **kwargs: P.kwargs) -> ModelPackage:
        target = Path(output_dir)
        _check_target(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        work = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            build(sources, work, *args, **kwargs)
            replace_directory(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return ModelPackage.load(target)

    return wrapper
