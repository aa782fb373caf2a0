"""Double of ``magicmind.python.runtime.parser``: ``Parser(ModelKind)`` for ONNX and TF graphdefs.

ONNX files are read as they are.  TensorFlow frozen graphs (``tf-graphdef-file``) are turned
into ONNX with tf2onnx (the double's stand-in for MagicMind's own TF parser); the network's
tensors then carry the graphdef node names given in tf-graphdef-inputs/outputs, with unknown
(-1) input dims, as MagicMind leaves them until ``set_dimension``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicmind.python.runtime import Code, ModelKind, Network, Status, _err

_TF_KEYS = ("tf-model-type", "tf-graphdef-inputs", "tf-graphdef-outputs", "tf-infer-shape")


class Parser:
    def __init__(self, *args: Any) -> None:
        if len(args) != 1 or not isinstance(args[0], ModelKind):
            raise TypeError("Parser(): expects one ModelKind")
        self._kind = args[0]
        self._params: dict[str, Any] = {}

    def set_model_param(self, key: str, value: Any) -> Status:
        if self._kind is ModelKind.kTensorflow and key not in _TF_KEYS:
            return _err(Code.INVALID_ARGUMENT, f"unknown tensorflow model param {key!r}")
        self._params[key] = value
        return Status.OK()

    def parse(self, *args: Any) -> Status:
        if len(args) != 2 or not isinstance(args[0], Network) or not isinstance(args[1], str):
            raise TypeError("parse(): incompatible function arguments (network, path: str)")
        network, path = args
        if network._onnx is not None:
            return _err(Code.INVALID_ARGUMENT, "network is not empty")
        if not Path(path).is_file():
            return _err(Code.NOT_FOUND, f"model file {path} not found")
        if self._kind is ModelKind.kOnnx:
            try:
                network._load(_onnx_with_weights(path))
            except Exception as exc:  # noqa: BLE001
                return _err(Code.INVALID_ARGUMENT, f"cannot parse ONNX {path}: {exc}")
            return Status.OK()
        if self._kind is ModelKind.kTensorflow:
            return self._parse_tf(network, path)
        return _err(Code.UNIMPLEMENTED, f"the double does not parse {self._kind}")

    def _parse_tf(self, network: Network, path: str) -> Status:
        if self._params.get("tf-model-type") != "tf-graphdef-file":
            return _err(Code.INVALID_ARGUMENT, "set tf-model-type to tf-graphdef-file")
        inputs, outputs = self._params.get("tf-graphdef-inputs"), self._params.get("tf-graphdef-outputs")
        if not inputs or not outputs:
            return _err(Code.INVALID_ARGUMENT, "set tf-graphdef-inputs and tf-graphdef-outputs")
        import onnx
        import tensorflow as tf
        import tf2onnx

        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(Path(path).read_bytes())
        names = {n.name for n in graph_def.node}
        missing = [n for n in [*inputs, *outputs] if n not in names]
        if missing:
            return _err(Code.NOT_FOUND, f"nodes {missing} are not in {path}")
        proto, _ = tf2onnx.convert.from_graph_def(
            graph_def, input_names=[f"{n}:0" for n in inputs], output_names=[f"{n}:0" for n in outputs], opset=17
        )
        renames = {f"{n}:0": n for n in [*inputs, *outputs]}
        for value in [*proto.graph.input, *proto.graph.output]:
            value.name = renames.get(value.name, value.name)
        for node in proto.graph.node:
            node.input[:] = [renames.get(i, i) for i in node.input]
            node.output[:] = [renames.get(o, o) for o in node.output]
        proto.ir_version = 10
        network._load(proto.SerializeToString())
        for tensor in network._inputs:
            tensor._dims = [-1] * len(tensor._dims)
        del onnx
        return Status.OK()


def _onnx_with_weights(path: str) -> bytes:
    """The ONNX file with any external weights read in (resolved relative to the file, as an
    ONNX parser does)."""
    import onnx

    return onnx.load(path).SerializeToString()
