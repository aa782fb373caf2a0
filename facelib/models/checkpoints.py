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
from pathlib import Path
from typing import Any

from facelib.errors import ConversionError, ModelFileError, require

__all__ = ["load_torch_checkpoint"]


def load_torch_checkpoint(path: str | os.PathLike[str], purpose: str = "Converting a checkpoint") -> Any:
    """Load a torch checkpoint weights-only on the CPU.

    Parameters
    ----------
    path:
        The ``.pth`` / ``.pth.tar`` file.
    purpose:
        What the caller does, for the missing-dependency message.

    Returns
    -------
    The unpickled object (usually a ``dict`` of name -> ``torch.Tensor``, or of such dicts).

    Raises
    ------
    MissingDependencyError
        torch is not installed (``facelib[convert]``).
    ModelFileError
        The file is missing, empty or not a torch checkpoint.
    ConversionError
        The file holds objects other than tensors and plain containers (refused, never executed).
    """
    torch: Any = require("torch", "convert", purpose)
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise ModelFileError(f"checkpoint {path} is empty (0 bytes)")
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
        reason = detail or (text.splitlines()[0] if text else type(exc).__name__)
        raise ModelFileError(
            f"{path} is not a readable torch checkpoint ({reason}); it may be truncated or corrupt"
        ) from exc
