"""The backend conformance suite (facelib.testing.conformance) on the TensorRT doubles: TensorRT 10,
and TensorRT 11 (strongly typed networks) for the tasks."""

from pathlib import Path

from trt_double_env import doubles

from facelib.testing.conformance import BackendConformance, TaskConformance

PLUGIN = Path(__file__).resolve().parents[1]


class TestTensorRTConformance(
    BackendConformance,
    backend="tensorrt",
    doubles=doubles,
    source_root=PLUGIN,
    other_options={"builder_optimization_level": 2},
):
    pass


class TestTensorRT11Tasks(
    TaskConformance,
    backend="tensorrt",
    doubles=doubles,
    activation={"version": "11.1.0"},
    source_root=PLUGIN,
    version="11.1.0",
):
    pass
