"""Two ONNX graphs of one network stored with one copy of their weights.

A converter that writes two graphs over the same weights (FaceFormer's offline audio encoder and
its streaming variant, which differ in one normalisation) would otherwise store every weight
twice: 380 MB more for wav2vec2-base.  :func:`share_weights` moves the first graph's large
initializers into one external-data file beside it (ONNX's external data format: each tensor
records ``location``, ``offset`` and ``length``) and points the second graph's identical
initializers (same type, shape and bytes) at the same places in that file.  ONNX Runtime and
the accelerator parsers resolve ``location`` relative to the model file, so both graphs load
from the package folder as before; the offline graph's computation is unchanged.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

Key = tuple[int, tuple[int, ...], str]


def _tensor_key(tensor: object) -> Key:
    from onnx import numpy_helper

    data = np.ascontiguousarray(numpy_helper.to_array(tensor))  # type: ignore[arg-type]
    digest = hashlib.sha256(data.tobytes()).hexdigest()
    return int(tensor.data_type), tuple(int(d) for d in tensor.dims), digest  # type: ignore[attr-defined]


def share_weights(primary: Path, secondary: Path | Sequence[Path], data_file: str, size_threshold: int = 1024) -> int:
    """Store ``primary``'s initializers of at least ``size_threshold`` bytes in ``data_file`` (in
    the same folder) and make ``secondary`` (one graph or several) read its identical
    initializers from there.

    Every file is rewritten in place (the caller writes the package aside and publishes it
    whole).  Returns the number of weight bytes the secondaries no longer store themselves.
    """
    import onnx

    from facelib.io.atomic import give_usual_permissions

    model = onnx.load(os.fspath(primary))
    keys = {init.name: _tensor_key(init) for init in model.graph.initializer}
    onnx.save_model(
        model,
        os.fspath(primary),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data_file,
        size_threshold=size_threshold,
    )
    give_usual_permissions(primary.parent / data_file)  # onnx creates it 0600
    stored = onnx.load(os.fspath(primary), load_external_data=False)
    places: dict[Key, tuple[int, int]] = {}
    for init in stored.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            info = {entry.key: entry.value for entry in init.external_data}
            places[keys[init.name]] = (int(info.get("offset", 0)), int(info["length"]))

    saved = 0
    for path in [secondary] if isinstance(secondary, str | os.PathLike) else secondary:
        other = onnx.load(os.fspath(path))
        for init in other.graph.initializer:
            place = places.get(_tensor_key(init))
            if place is None:
                continue
            offset, length = place
            for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
                init.ClearField(field)
            del init.external_data[:]
            for key, value in (("location", data_file), ("offset", str(offset)), ("length", str(length))):
                entry = init.external_data.add()
                entry.key, entry.value = key, value
            init.data_location = onnx.TensorProto.EXTERNAL
            saved += length
        onnx.save_model(other, os.fspath(path))
    return saved
