"""The backend conformance suite (facelib.testing.conformance) on the MagicMind double: mutable
shapes (the default), and models built for fixed shapes (the card's ``opt`` shapes) for the tasks."""

from pathlib import Path
from typing import Any

from facelib.testing.conformance import BackendConformance, TaskConformance
from facelib.testing.doubles import load_module
from facelib.testing.model_cases import Case

PLUGIN = Path(__file__).resolve().parents[1]
cambricon_testing = load_module(PLUGIN / "tests" / "doubles" / "cambricon_testing.py", "cambricon_testing")
DOUBLES = {"doubles": cambricon_testing.doubles, "source_root": PLUGIN}


class TestCambriconConformance(
    BackendConformance, backend="cambricon", other_options={"precision_mode": "force_float16"}, **DOUBLES
):
    def inspect_session(self, session: Any, case: Case) -> None:
        assert session.mutable == bool(case.shapes)  # built with graph_shape_mutable for shape ranges


class TestCambriconFixedShapeTasks(
    TaskConformance, backend="cambricon", options={"mutable": False}, **DOUBLES, fixed_shapes=True
):
    pass
