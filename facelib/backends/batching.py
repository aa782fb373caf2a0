"""Fitting input shapes to the shapes a static-shape artefact was compiled for.

A *stage* is one set of input shapes a compiled model accepts: exactly (static) or as upper
bounds (dynamic).  :func:`fit` picks the cheapest stage for a set of feeds; when only the batch
dimension (axis 0) is smaller than a static stage's, the feeds are padded up to it and the
outputs are sliced back (:func:`pad_batch`, :func:`unpad_batch`).  Any other mismatch is an
:class:`~facelib.errors.InputError` naming the compiled stages: nothing is ever truncated.

Tasks use :func:`run_batched` to send any number of items through a session: chunks of at most
the task's limit and the session's fixed batch (:func:`fixed_batch`), padded the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from facelib.backends.base import Session
from facelib.errors import InferenceError, InputError

Shape = tuple[int, ...]


@attrs.frozen
class Stage:
    """One compiled input configuration.

    Attributes
    ----------
    key:
        What the runtime needs to select it (e.g. a graph name for SOPHON SAIL; may be unused).
    inputs:
        Input name -> shape; exact shape for static stages, maximum shape for dynamic ones.
    outputs:
        Output name -> shape (maximum shape for dynamic stages).
    dynamic:
        True when every dimension may be anything from 1 to the stored maximum.
    """

    key: str
    inputs: Mapping[str, Shape]
    outputs: Mapping[str, Shape]
    dynamic: bool = False

    @property
    def cost(self) -> int:
        return sum(int(np.prod(s)) for s in self.inputs.values())

    def describe(self) -> str:
        kind = "dynamic, max" if self.dynamic else "static"
        shapes = ", ".join(f"{n}={list(s)}" for n, s in self.inputs.items())
        return f"{self.key} ({kind}: {shapes})"


@attrs.frozen
class Fit:
    """The stage chosen for some feeds; ``batch`` is the padded batch size or None (exact fit)."""

    stage: Stage
    batch: int | None = None
    actual_batch: int | None = None


def _exact(stage: Stage, shapes: Mapping[str, Shape]) -> bool:
    for name, shape in shapes.items():
        want = stage.inputs[name]
        if len(want) != len(shape):
            return False
        if stage.dynamic:
            if not all(0 < s <= w for s, w in zip(shape, want)):
                return False
        elif tuple(shape) != tuple(want):
            return False
    return True


def _paddable(stage: Stage, shapes: Mapping[str, Shape]) -> int | None:
    """The stage batch when the feeds fit it after padding axis 0, else None."""
    if stage.dynamic:
        return None
    batches = set()
    stage_batches = set()
    for name, shape in shapes.items():
        want = stage.inputs[name]
        if len(want) != len(shape) or len(shape) == 0 or tuple(shape[1:]) != tuple(want[1:]):
            return None
        batches.add(shape[0])
        stage_batches.add(want[0])
    if len(batches) != 1 or len(stage_batches) != 1:
        return None
    (n,), (b,) = batches, stage_batches
    return b if 0 < n < b else None


def fit(stages: Sequence[Stage], shapes: Mapping[str, Shape], model: str) -> Fit:
    """Choose the stage for input ``shapes`` (name -> shape), preferring exact fits, then the
    smallest padded batch.  Raises :class:`InputError` listing the stages when none fits."""
    for stage in sorted(stages, key=lambda s: (s.dynamic, s.cost)):
        if _exact(stage, shapes):
            return Fit(stage)
    padded = [(b, s) for s in stages if (b := _paddable(s, shapes)) is not None]
    if padded:
        batch, stage = min(padded, key=lambda item: (item[0], item[1].cost))
        n = next(iter(shapes.values()))[0]
        return Fit(stage, batch, n)
    got = ", ".join(f"{n}={list(s)}" for n, s in shapes.items())
    compiled = "; ".join(s.describe() for s in stages)
    raise InputError(
        f"{model}: input shapes {got} fit none of the compiled shapes [{compiled}]. Only the batch "
        "(axis 0) of a static model can be padded; compile the model for these shapes (a model "
        "card 'shapes' range, or the backend's 'stages' / 'dynamic' compile options)."
    )


def pad_batch(array: np.ndarray, batch: int) -> np.ndarray:
    """Pad axis 0 of ``array`` to ``batch`` rows by repeating its last row (never truncates).

    This is facelib's one padding rule, used by every backend that runs fixed batch sizes
    (Ascend batch gears, SOPHON static stages, MagicMind fixed shapes) and by the tasks.  The
    padded rows are thrown away, but they still run through the network: repeating the last
    real row keeps them in-distribution (an all-zero image or sequence can drive activations,
    int8 scales or NaN-prone normalisations to values no real input reaches), and the real rows'
    outputs do not depend on them since batch rows are independent at inference.
    """
    n = array.shape[0]
    if n > batch:
        raise InputError(f"cannot pad a batch of {n} down to {batch}")
    if n == batch:
        return array
    filler = np.repeat(array[-1:], batch - n, axis=0)
    return np.ascontiguousarray(np.concatenate([array, filler], axis=0))


def unpad_batch(outputs: Mapping[str, np.ndarray], fitted: Fit, model: str) -> dict[str, np.ndarray]:
    """Slice padded rows off every output whose axis 0 is the padded batch."""
    if fitted.batch is None or fitted.actual_batch is None:
        return dict(outputs)
    out = {}
    for name, value in outputs.items():
        if value.ndim == 0 or value.shape[0] != fitted.batch:
            raise InferenceError(
                f"{model}: inputs were padded from batch {fitted.actual_batch} to {fitted.batch}, but output "
                f"{name!r} has shape {value.shape} without that batch axis, so the padding cannot be undone; "
                "compile the model for this batch size"
            )
        out[name] = value[: fitted.actual_batch]
    return out


def fixed_batch(session: Session, name: str | None = None) -> int | None:
    """The batch size an input of ``session`` was built for, or None when its batch is dynamic.

    ``name`` selects the input (default: the first).
    """
    spec = next((s for s in session.inputs if s.name == name), None) if name else session.inputs[0]
    dim = spec.shape[0] if spec is not None and spec.shape else None
    return dim if isinstance(dim, int) and dim > 0 else None


def run_batched(
    session: Session,
    feeds: Mapping[str, np.ndarray],
    batched: Sequence[str] | None = None,
    *,
    max_batch: int | None = None,
    shared: Sequence[str] = (),
    output_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Run ``session`` on feeds whose ``batched`` inputs (default: all but ``shared``) share axis 0.

    Items go in chunks of at most ``max_batch`` and at most the session's fixed batch.  A session
    built for a fixed batch gets every chunk padded to it (:func:`pad_batch`: copies of the last
    item) and each ``shared`` input (one item used by the whole batch) repeated to its own built
    batch; outputs are sliced back and concatenated.  With nothing to chunk or pad the session
    runs once on ``feeds`` as given.  At least one item is required.
    """
    names = list(batched) if batched is not None else [k for k in feeds if k not in shared]
    n = len(feeds[names[0]])
    if n == 0:
        raise InputError("run_batched needs at least one item")
    fixed = fixed_batch(session, names[0])
    step = min(max_batch or n, fixed or n)
    sizes = {k: fixed_batch(session, k) or len(feeds[k]) for k in shared}
    if step >= n and fixed in (None, n) and all(len(feeds[k]) == sizes[k] for k in shared):
        return session.run(feeds, output_names)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, n, step):
        chunk = dict(feeds)
        real = min(step, n - start)
        for key in names:
            part = feeds[key][start : start + step]
            chunk[key] = pad_batch(part, fixed) if fixed is not None else part
        for key in shared:
            chunk[key] = np.repeat(feeds[key][:1], sizes[key], 0)
        parts.append({k: v[:real] for k, v in session.run(chunk, output_names).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
