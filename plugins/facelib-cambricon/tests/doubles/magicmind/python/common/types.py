"""Double of ``magicmind.python.common.types`` (numpy <-> DataType helpers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from magicmind.python.runtime import DataType


def get_numpy_dtype_by_datatype(dtype: DataType) -> Any:
    return np.dtype(dtype.value)


def get_datatype_by_numpy(dtype: Any) -> DataType:
    return DataType(np.dtype(dtype).name)
