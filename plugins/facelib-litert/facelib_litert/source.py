"""Which TFLite model an ONNX file of a model package was converted from.

facelib hands every backend the package's ONNX file.  The MediaPipe converter keeps each source
``.tflite`` in the package and records it in the card (``metadata["tflite"]``,
:mod:`facelib.models.tflite`); :func:`find_source` reads that record for one ONNX file, checks
it, and says plainly why there is none when there is none.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from facelib.backends.base import TensorSpec
from facelib.errors import BackendError, ModelError
from facelib.models.card import CARD_FILENAME, ModelCard
from facelib.models.package import read_onnx_specs, sha256_file
from facelib.models.tflite import TFLiteSource, sources

#: The converter of the packages that carry TFLite sources.
MEDIAPIPE_CONVERTER = "facelib.models.convert.mediapipe"
#: What runs every other model (for the error messages).
OTHER_BACKENDS = (
    "run it with ONNX Runtime (built in: backend='onnxruntime' or 'auto') or a device plugin "
    "(tensorrt, ascend, sophon, cambricon)"
)
#: How to re-convert an old MediaPipe package (for the error messages).
RECONVERT = (
    "re-convert it with this facelib ('facelib convert mediapipe face_landmarker.task -o DIR', "
    "or 'facelib models fetch mediapipe-face-landmarker --force'), which keeps the .tflite files"
)


class TFLiteSourceError(BackendError):
    """The ONNX file has no TFLite source LiteRT could run instead (a bare file, a model converted
    from PyTorch/TensorFlow graphs, a package made before facelib kept sources, a changed file)."""


@attrs.frozen
class Found:
    """One ONNX file's TFLite source: the file, the record and the ONNX file's own interface."""

    tflite: Path
    source: TFLiteSource
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def _package_of(onnx: Path) -> tuple[Path, ModelCard, str] | None:
    """(package root, card, role) of the package whose card names ``onnx``; None for a bare file."""
    target = onnx.resolve()
    for folder in [target.parent, *target.parent.parents][:4]:
        card_path = folder / CARD_FILENAME
        if not card_path.is_file():
            continue
        try:
            card = ModelCard.read(card_path)
        except ModelError:
            continue
        for role, item in card.files.items():
            if (folder / item.path).resolve() == target:
                return folder, card, role
    return None


def find_source(onnx: Path) -> Found:
    """The checked TFLite source of ``onnx``, or :class:`TFLiteSourceError` saying why there is none.

    Checks that the ONNX file is the one converted from the source (its sha256 is recorded: a
    quantized or edited copy is refused) and that the ``.tflite`` file is intact.
    """
    onnx = Path(onnx)
    found = _package_of(onnx)
    if found is None:
        raise TFLiteSourceError(
            f"{onnx.name}: LiteRT runs only models converted from TFLite, opened from their model package "
            f"(which keeps the .tflite source and says which ONNX tensor is which); {onnx} is not in a "
            f"package; {OTHER_BACKENDS}"
        )
    root, card, role = found
    recorded = sources(card.metadata)
    if role not in recorded:
        converter = str(card.source.get("converter", "an unknown converter"))
        if converter == MEDIAPIPE_CONVERTER:
            raise TFLiteSourceError(
                f"{card.name} ({root}) was converted before facelib kept the TFLite sources in the package, "
                f"so LiteRT has nothing to run for {onnx.name}; {RECONVERT}"
            )
        raise TFLiteSourceError(
            f"LiteRT runs only models converted from TFLite; {card.name} ({card.task}, role {role!r}) was made "
            f"by {converter} from other sources; {OTHER_BACKENDS}"
        )
    source = recorded[role]
    if sha256_file(onnx) != source.onnx_sha256:
        raise TFLiteSourceError(
            f"{onnx.name} ({card.name}) is not the ONNX file converted from {source.path} (its sha256 "
            f"differs: a quantized or edited copy), so LiteRT would run another model; use the package "
            f"as converted, or {OTHER_BACKENDS}"
        )
    tflite = (root / source.path).resolve()
    if not tflite.is_relative_to(root.resolve()) or not tflite.is_file():
        raise TFLiteSourceError(f"{card.name} ({root}): its TFLite source {source.path} is missing; {RECONVERT}")
    if sha256_file(tflite) != source.sha256:
        raise TFLiteSourceError(
            f"{card.name} ({root}): {source.path} differs from the sha256 in the card (corrupt or replaced); "
            f"{RECONVERT}"
        )
    inputs, outputs = read_onnx_specs(onnx)
    names = [s.name for s in inputs], [s.name for s in outputs]
    if names != (list(source.inputs), list(source.outputs)):
        raise TFLiteSourceError(
            f"{card.name}: the card's TFLite record of {source.path} names inputs {list(source.inputs)} and "
            f"outputs {list(source.outputs)}, the ONNX file {names[0]} and {names[1]}; {RECONVERT}"
        )
    return Found(tflite, source, inputs, outputs)
