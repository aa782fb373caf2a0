"""Inputs for measuring a bare model: shapes resolved from specs and cards, data seeded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from facelib.backends.base import ShapeRange, TensorSpec
from facelib.errors import InputError


def resolve_shape(spec: TensorSpec, batch: int, shape_range: ShapeRange | None = None) -> tuple[int, ...]:
    """A concrete shape for ``spec``: the card's ``opt`` shape with the first dim set to ``batch``
    when the first dim is dynamic; other dynamic dims take ``opt`` (or 1 without a card range)."""
    dims: list[int] = []
    for i, dim in enumerate(spec.shape):
        if isinstance(dim, int) and dim >= 0:
            dims.append(dim)
        elif i == 0:
            dims.append(batch)
        elif shape_range is not None:
            dims.append(shape_range.opt[i])
        else:
            dims.append(1)
    return tuple(dims)


def random_feeds(
    specs: Sequence[TensorSpec],
    batch: int = 1,
    shapes: Mapping[str, ShapeRange] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Seeded inputs for every spec: floats uniform in [0, 1), integers 0/1, booleans False.

    Real inputs give more meaningful numbers; these only exercise a model's speed and a
    backend's agreement on the same data.
    """
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = resolve_shape(spec, batch, (shapes or {}).get(spec.name))
        try:
            dtype = np.dtype(spec.dtype)
        except TypeError as exc:
            raise InputError(f"input {spec.name!r} has a dtype facelib cannot make data for: {spec.dtype}") from exc
        if np.issubdtype(dtype, np.floating):
            feeds[spec.name] = rng.random(shape, dtype=np.float32).astype(dtype)
        elif dtype == np.bool_:
            feeds[spec.name] = np.zeros(shape, dtype=bool)
        else:
            feeds[spec.name] = rng.integers(0, 2, shape).astype(dtype)
    return feeds
