"""Backends: the executor layer.  See :mod:`facelib.backends.hookspecs` for the plugin API."""

from facelib.backends.base import (
    Availability,
    Backend,
    CompileRequest,
    Session,
    ShapeRange,
    SpecSession,
    TensorSpec,
    check_options,
)
from facelib.backends.hookspecs import ENTRY_POINT_GROUP, hookimpl, hookspec
from facelib.backends.registry import (
    BackendInfo,
    PluginFailure,
    backend_class,
    failed_plugins,
    get_backend,
    list_backends,
    register_backend,
    reload_plugins,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Availability",
    "Backend",
    "BackendInfo",
    "CompileRequest",
    "PluginFailure",
    "Session",
    "ShapeRange",
    "SpecSession",
    "TensorSpec",
    "backend_class",
    "check_options",
    "failed_plugins",
    "get_backend",
    "hookimpl",
    "hookspec",
    "list_backends",
    "register_backend",
    "reload_plugins",
]
