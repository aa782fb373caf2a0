"""Test double of pyACL (``import acl``): only what facelib-ascend calls."""

from __future__ import annotations

import os
from types import SimpleNamespace


def _device_count() -> tuple[int, int]:
    count = int(os.environ.get("FACELIB_ACL_DOUBLE_DEVICES", "1"))
    if count < 0:
        return 0, 507033  # ACL_ERROR_RT_DRV_INTERNAL_ERROR-style failure
    return count, 0


def get_soc_name() -> str:
    return os.environ.get("FACELIB_ACL_DOUBLE_SOC", "Ascend310P3")


rt = SimpleNamespace(get_device_count=_device_count)
