"""The backend conformance suite (facelib.testing.conformance) on the Ascend backend's SDK doubles."""

from pathlib import Path

from ascend_double_env import doubles

from facelib.testing.conformance import BackendConformance

PLUGIN = Path(__file__).resolve().parents[1]


class TestAscendConformance(
    BackendConformance,
    backend="ascend",
    doubles=doubles,
    source_root=PLUGIN,
    other_options={"precision_mode": "force_fp16"},
):
    pass
