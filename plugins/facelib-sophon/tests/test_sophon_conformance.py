"""The backend conformance suite (facelib.testing.conformance) on the SAIL / TPU-MLIR doubles."""

from pathlib import Path

from facelib.testing.conformance import BackendConformance
from facelib.testing.doubles import load_module

PLUGIN = Path(__file__).resolve().parents[1]
sophon_testing = load_module(PLUGIN / "tests" / "doubles" / "sophon_testing.py", "sophon_testing")


class TestSophonConformance(
    BackendConformance,
    backend="sophon",
    doubles=sophon_testing.doubles,
    source_root=PLUGIN,
    other_options={"chip": "bm1688"},
):
    def inspect_cache(self, cached: Path) -> None:
        assert not list(cached.parent.glob("facelib-sophon-*")), "a TPU-MLIR work folder was left behind"
