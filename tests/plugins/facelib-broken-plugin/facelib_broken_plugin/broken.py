"""Fails on import, as a plugin with a missing vendor SDK would."""

import facelib_vendor_sdk_that_does_not_exist  # noqa: F401
