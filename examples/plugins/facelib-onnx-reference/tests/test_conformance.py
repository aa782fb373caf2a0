"""facelib's conformance suite on this plugin: the one line a third-party backend adds.

Run with ``pytest examples/plugins/facelib-onnx-reference/tests`` once the plugin is installed
(``pip install -e examples/plugins/facelib-onnx-reference``).  The reference evaluator is pure
Python, so this example runs the session part of the suite only; a device backend subclasses
``BackendConformance`` (sessions, every task end to end, the tools).
"""

from facelib.testing.conformance import SessionConformance


class TestOnnxReferenceConformance(SessionConformance, backend="onnx-reference"):
    pass
