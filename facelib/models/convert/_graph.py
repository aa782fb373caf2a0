"""Small edits of ONNX graphs shared by the converters' graph passes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def set_nodes(graph: Any, nodes: Iterable[Any]) -> None:
    """Make ``nodes`` the nodes of ``graph`` (an ``onnx.GraphProto``), in that order, and drop
    the initializers none of them reads any more."""
    nodes = list(nodes)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
