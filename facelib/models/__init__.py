"""Model packages, model cards, the artefact registry, fetching and converters."""

from facelib.models.card import CARD_FILENAME, ModelCard, ModelFile
from facelib.models.package import ModelPackage, read_onnx_specs, sha256_file

__all__ = ["CARD_FILENAME", "ModelCard", "ModelFile", "ModelPackage", "read_onnx_specs", "sha256_file"]
