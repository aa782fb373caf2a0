"""facelib's default model packages as package data (``facelib-models`` distribution).

Each sub-directory is a complete facelib model package (``facelib.json`` card, ONNX files,
``hub.json`` provenance) named after its registry entry.  facelib's hub finds them through
:mod:`facelib.models.bundled`; nothing here needs importing.
"""

from pathlib import Path

#: Directory holding one model package per registry name.
ROOT = Path(__file__).resolve().parent
