"""facelib backend plugin for Google LiteRT (``ai-edge-litert``): the TFLite models packages were converted from."""

from facelib_litert.backend import LiteRTBackend, LiteRTSession, TFLiteSourceError

__all__ = ["LiteRTBackend", "LiteRTSession", "TFLiteSourceError"]
