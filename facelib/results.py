"""Shared base of the typed result classes every task returns."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class ResultMixin:
    """Adds :meth:`to_dict` (JSON-ready: arrays become lists) to an attrs result class."""

    def to_dict(self) -> dict[str, Any]:
        """Fields as plain Python values (lists instead of arrays), ready for ``json.dumps``."""
        return _plain(attrs.asdict(self, recurse=True))  # type: ignore[arg-type]


#: Equality of array fields (``attrs.field(eq=ARRAY_EQ)``): same shape and values.
ARRAY_EQ = attrs.cmp_using(eq=np.array_equal)
