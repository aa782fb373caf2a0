"""The backend conformance suite (facelib.testing.conformance) on the MagicMind double: mutable
shapes (the default), and models built for fixed shapes (the card's ``opt`` shapes) for the tasks."""

from pathlib import Path
from typing import Any

import pytest

from facelib.errors import InferenceError
from facelib.testing.conformance import BackendConformance, TaskConformance
from facelib.testing.doubles import load_module
from facelib.testing.model_cases import Case

PLUGIN = Path(__file__).resolve().parents[1]
cambricon_testing = load_module(PLUGIN / "tests" / "doubles" / "cambricon_testing.py", "cambricon_testing")
DOUBLES = {"doubles": cambricon_testing.doubles, "source_root": PLUGIN}


class TestCambriconConformance(
    BackendConformance, backend="cambricon", other_options={"precision_mode": "force_float16"}, **DOUBLES
):
    @pytest.mark.xfail(
        raises=InferenceError,
        strict=True,
        reason="a batch beyond the built dim_range reaches MagicMind and comes back as an InferenceError "
        "(its OUT_OF_RANGE status), not an InputError: left to the plugin fixes of issue 18",
    )
    def test_wrong_inputs_are_input_errors(self, models_dir: Path, tmp_path: Path) -> None:
        super().test_wrong_inputs_are_input_errors(models_dir, tmp_path)

    def inspect_session(self, session: Any, case: Case) -> None:
        assert session.mutable == bool(case.shapes)  # built with graph_shape_mutable for shape ranges


class TestCambriconFixedShapeTasks(
    TaskConformance, backend="cambricon", options={"mutable": False}, **DOUBLES, fixed_shapes=True
):
    pass
