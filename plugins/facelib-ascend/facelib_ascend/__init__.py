"""facelib backend plugin for Huawei Ascend NPUs: ``ascend`` (ATC + ais_bench) and ``ascend-cann`` (ORT CANN EP)."""

from facelib_ascend.backend import AscendBackend, AscendSession
from facelib_ascend.cann import AscendCannBackend

__all__ = ["AscendBackend", "AscendCannBackend", "AscendSession"]
