"""Open downloaded torch checkpoints without running code from them.

A ``.pth`` file is a pickle, and unpickling an untrusted pickle can run arbitrary code.
:func:`load_torch_checkpoint` always uses ``torch.load(..., weights_only=True)``: only tensors,
numbers, strings and plain containers are rebuilt; anything else is refused with a
:class:`~facelib.errors.ConversionError`.  Every released checkpoint facelib converts
(FaceBoxesProd.pth as a legacy pickle, FaceFormer ``vocaset.pth``/``biwi.pth``, FOMM
``*-cpk.pth.tar``) loads this way.  Converters should call this instead of ``torch.load``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from facelib.errors import ConversionError, InputError, ModelFileError, require

__all__ = ["CheckpointError", "CheckpointNotFoundError", "load_state_dict", "load_torch_checkpoint"]


class CheckpointError(ModelFileError, ConversionError):
    """A checkpoint that cannot be read: a bad model file, so its conversion fails (it is both)."""


class CheckpointNotFoundError(CheckpointError, InputError):
    """The checkpoint path names no file (a wrong path given by the caller)."""


def load_torch_checkpoint(
    path: str | os.PathLike[str], purpose: str = "Converting a checkpoint", expected: str = ""
) -> Any:
    """Load a torch checkpoint weights-only on the CPU.

    Parameters
    ----------
    path:
        The ``.pth`` / ``.pth.tar`` file.
    purpose:
        What the caller does, for the missing-dependency message.
    expected:
        What the file should be (``"FaceBoxesProd.pth"``), added to the unreadable-file message.

    Returns
    -------
    The unpickled object (usually a ``dict`` of name -> ``torch.Tensor``, or of such dicts).

    Raises
    ------
    MissingDependencyError
        torch is not installed (``facelib[convert]``).
    CheckpointNotFoundError
        No file at ``path`` (a :class:`CheckpointError` and an :class:`InputError`).
    CheckpointError
        The file is empty or not a torch checkpoint (a :class:`ModelFileError` and a
        :class:`ConversionError`).
    ConversionError
        The file holds objects other than tensors and plain containers (refused, never executed).
    """
    torch: Any = require("torch", "convert", purpose)
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError / EOFError variants
        text = str(exc)
        detail = next((ln.strip() for ln in text.splitlines() if "WeightsUnpickler error" in ln), "")
        if "Unsupported global" in text or "Unsupported class" in text:
            raise ConversionError(
                f"{path} contains Python objects other than tensors; facelib does not unpickle untrusted "
                f"files, and weights-only loading refused it ({detail or type(exc).__name__})"
            ) from exc
        reason = detail or (text.strip().splitlines()[0] if text.strip() else type(exc).__name__)
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint ({reason}); weights-only loading "
            f"(torch.load with weights_only=True) could not read it: it may be truncated or corrupt"
            + (f"; expected {expected}" if expected else "")
        ) from exc


def strip_prefix(state: Mapping[str, Any], prefix: str = "module.") -> dict[str, Any]:
    """``state`` with ``prefix`` (``DataParallel``'s ``module.``) removed from the start of each key."""
    return {str(k).removeprefix(prefix): v for k, v in state.items()}


def load_state_dict(
    path: str | os.PathLike[str],
    purpose: str = "Converting a checkpoint",
    wrappers: Iterable[str] = ("state_dict",),
    expected: str = "",
) -> dict[str, Any]:
    """The state dict (name -> tensor) of a checkpoint loaded with :func:`load_torch_checkpoint`.

    Dicts nested under a key in ``wrappers`` (training scripts save ``{"state_dict": ...}`` or
    ``{"model": ...}``) are unwrapped in that order; ``module.`` key prefixes are removed.
    Raises :class:`ConversionError` when the result is not a mapping.
    """
    state = load_torch_checkpoint(path, purpose, expected)
    for key in wrappers:
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise ConversionError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return strip_prefix(state)
