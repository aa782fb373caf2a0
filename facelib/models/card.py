"""Model cards: the JSON file (``facelib.json``) that says what a model package is.

A card names the task, the files by role with their input/output specs, the preprocessing
constants and output semantics the task reads, and where the weights came from (URL, sha256 of
the upstream artefact, licence).  Tasks configure themselves from the card, never from guesses
about tensor shapes.

Example::

    {
      "format_version": 1,
      "name": "fsanet",
      "task": "head_pose",
      "variant": "ensemble",
      "licence": "Apache-2.0",
      "source": {"url": "https://...", "sha256": "...", "converter": "facelib.models.convert..."},
      "files": {
        "capsule": {"path": "capsule.onnx", "sha256": "...",
                    "inputs": [{"name": "input_1:0", "shape": ["N", 64, 64, 3], "dtype": "float32"}],
                    "outputs": [{"name": "pred_pose/mul_24:0", "shape": ["N", 3], "dtype": "float32"}],
                    "shapes": {"input_1:0": {"min": [1,64,64,3], "opt": [1,64,64,3], "max": [64,64,64,3]}}}
      },
      "preprocessing": {"colour_order": "BGR", "size": [64, 64], "margin": 0.6},
      "outputs": {"pose": "yaw, pitch, roll in degrees"},
      "metadata": {}
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from facelib.backends.base import ShapeRange, TensorSpec
from facelib.errors import ModelCardError

CARD_FILENAME = "facelib.json"
FORMAT_VERSION = 1
#: Task names a card may carry.
TASKS = ("head_pose", "blendshapes", "audio2face", "motion_transfer", "face_detection")


def _specs(value: Any) -> tuple[TensorSpec, ...]:
    if not isinstance(value, list | tuple):
        raise ModelCardError(f"tensor specs must be a list, got {type(value).__name__}")
    out = []
    for item in value:
        if isinstance(item, TensorSpec):
            out.append(item)
            continue
        if not isinstance(item, Mapping) or "name" not in item or "shape" not in item:
            raise ModelCardError(f"each tensor spec needs 'name' and 'shape', got {item!r}")
        out.append(TensorSpec(str(item["name"]), tuple(item["shape"]), str(item.get("dtype", "float32"))))
    return tuple(out)


def _shapes(value: Any) -> dict[str, ShapeRange]:
    out: dict[str, ShapeRange] = {}
    for name, rng in dict(value or {}).items():
        if isinstance(rng, ShapeRange):
            out[name] = rng
            continue
        try:
            out[name] = ShapeRange(rng["min"], rng["opt"], rng["max"])
        except (KeyError, TypeError) as exc:
            raise ModelCardError(f"shape range of {name!r} needs min, opt and max lists") from exc
    return out


@attrs.frozen
class ModelFile:
    """One file of a package, by role (e.g. ``"detector"``, ``"audio_encoder"``).

    ``path`` is relative to the package directory.  ``inputs``/``outputs`` are what the file
    must expose; ``shapes`` gives min/opt/max shapes of dynamic inputs for compiling backends.
    """

    path: str
    inputs: tuple[TensorSpec, ...] = attrs.field(converter=_specs, factory=tuple)
    outputs: tuple[TensorSpec, ...] = attrs.field(converter=_specs, factory=tuple)
    sha256: str | None = None
    shapes: dict[str, ShapeRange] = attrs.field(converter=_shapes, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }
        if self.sha256:
            out["sha256"] = self.sha256
        if self.shapes:
            out["shapes"] = {
                k: {"min": list(r.min), "opt": list(r.opt), "max": list(r.max)} for k, r in self.shapes.items()
            }
        return out


def _files(value: Any) -> dict[str, ModelFile]:
    if not isinstance(value, Mapping) or not value:
        raise ModelCardError("'files' must be a non-empty object mapping roles to files")
    out = {}
    for role, item in value.items():
        if isinstance(item, ModelFile):
            out[role] = item
        elif isinstance(item, Mapping) and "path" in item:
            known = {f.name for f in attrs.fields(ModelFile)}
            out[role] = ModelFile(**{k: v for k, v in item.items() if k in known})
        else:
            raise ModelCardError(f"file {role!r} needs at least a 'path'")
    return out


def _task(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in TASKS:
        raise ModelCardError(f"unknown task {value!r}; expected one of {', '.join(TASKS)}")


@attrs.frozen
class ModelCard:
    """Everything a task needs to know about a model package (see the module docstring)."""

    name: str
    task: str = attrs.field(validator=_task)
    files: dict[str, ModelFile] = attrs.field(converter=_files)
    variant: str = "default"
    licence: str = "unknown"
    source: dict[str, Any] = attrs.field(factory=dict)
    preprocessing: dict[str, Any] = attrs.field(factory=dict)
    outputs: dict[str, Any] = attrs.field(factory=dict)
    metadata: dict[str, Any] = attrs.field(factory=dict)
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "model card") -> ModelCard:
        """Build a card from parsed JSON; unknown top-level keys are an error (typos show)."""
        if not isinstance(data, Mapping):
            raise ModelCardError(f"{where}: expected a JSON object, got {type(data).__name__}")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ModelCardError(
                f"{where}: format_version {version} is not supported by this facelib "
                f"(it reads version {FORMAT_VERSION}); upgrade facelib or convert the model again"
            )
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelCardError(f"{where}: unknown fields {unknown}; known fields are {sorted(known)}")
        missing = [k for k in ("name", "task", "files") if k not in data]
        if missing:
            raise ModelCardError(f"{where}: missing required fields {missing}")
        try:
            return cls(**dict(data))
        except ModelCardError as exc:
            raise ModelCardError(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ModelCardError(f"{where}: {exc}") from exc

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read a card from a ``facelib.json`` file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelCardError(
                f"no model card at {path}; a model package is a directory with {CARD_FILENAME} "
                "and its ONNX files (make one with 'facelib convert' or 'facelib models fetch')"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelCardError(f"cannot read model card {path}: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelCardError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, where=str(path))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "name": self.name,
            "task": self.task,
            "variant": self.variant,
            "licence": self.licence,
            "source": self.source,
            "files": {role: f.to_dict() for role, f in self.files.items()},
            "preprocessing": self.preprocessing,
            "outputs": self.outputs,
            "metadata": self.metadata,
        }

    def write(self, directory: str | Path) -> Path:
        """Write this card as ``directory/facelib.json`` (atomically) and return its path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / CARD_FILENAME
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(target)
        return target

    def file(self, role: str) -> ModelFile:
        """The file with ``role``; a clear error names the roles the card has."""
        try:
            return self.files[role]
        except KeyError:
            raise ModelCardError(
                f"model {self.name!r} has no file with role {role!r}; it has {sorted(self.files)}"
            ) from None
