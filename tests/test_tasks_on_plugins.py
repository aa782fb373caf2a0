"""Every task, end to end, through every device plugin (with its SDK doubles) vs ONNX Runtime.

Issues 7 and 8: with the vendor-SDK doubles, each task runs end to end through each plugin and
its *results* (angles, boxes, blendshapes, landmarks, vertices, frames) match the ONNX Runtime
backend within 1e-5.  The tests themselves are the conformance suite,
:mod:`facelib.testing.conformance`, which each plugin runs from its own test folder
(``plugins/*/tests/test_*_conformance.py``) with its doubles: the path under test is the
hardware one (``ModelPackage.session`` -> ``backend.compile`` -> ``backend.load`` -> the
plugin's ``Session.run``); only the vendor modules are doubles.

Here: that every plugin (and every configuration covered before the suite existed) really runs
it, and that the result comparison it relies on fails when it should.
"""

from __future__ import annotations

import ast
from pathlib import Path

import attrs
import numpy as np
import pytest

from facelib.testing.compare import assert_results_match, differences

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def _conformance_classes(plugin: Path) -> list[tuple[str, dict[str, object]]]:
    """(suite, class keywords) of every conformance subclass in a plugin's tests."""
    found = []
    for path in sorted((plugin / "tests").glob("test_*_conformance.py")):
        tree = ast.parse(path.read_text())
        shared: dict[str, object] = {}
        for node in tree.body:  # DOUBLES = {...} spread into the class keywords
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                shared[node.targets[0].id] = node.value  # type: ignore[attr-defined]
        for node in tree.body:
            if not isinstance(node, ast.ClassDef) or not node.name.startswith("Test"):
                continue
            suites = [b.id for b in node.bases if isinstance(b, ast.Name) and b.id.endswith("Conformance")]
            keywords: dict[str, object] = {}
            for kw in node.keywords:
                spread = shared.get(kw.value.id) if kw.arg is None and isinstance(kw.value, ast.Name) else None
                if isinstance(spread, ast.Dict):
                    for key, value in zip(spread.keys, spread.values):
                        keywords[ast.literal_eval(key)] = ast.unparse(value)  # type: ignore[arg-type]
                elif kw.arg is not None:
                    try:
                        keywords[kw.arg] = ast.literal_eval(kw.value)
                    except ValueError:
                        keywords[kw.arg] = ast.unparse(kw.value)
            found.extend((suite, keywords) for suite in suites)
    return found


@pytest.mark.parametrize(
    "plugin, backend", [("facelib-tensorrt", "tensorrt"), ("facelib-ascend", "ascend"),
                        ("facelib-sophon", "sophon"), ("facelib-cambricon", "cambricon")]
)  # fmt: skip
def test_every_plugin_runs_the_conformance_suite(plugin: str, backend: str) -> None:
    classes = _conformance_classes(PLUGINS / plugin)
    full = [kw for suite, kw in classes if suite == "BackendConformance" and kw.get("backend") == backend]
    assert full, f"{plugin}: no BackendConformance subclass with backend={backend!r}"
    assert all("doubles" in kw and "source_root" in kw for kw in full), "runs on its doubles, this checkout's code"


def test_the_extra_configurations_keep_running_the_tasks() -> None:
    """TensorRT 11 (strongly typed networks) and MagicMind fixed-shape builds run every task too."""
    trt = _conformance_classes(PLUGINS / "facelib-tensorrt")
    assert any(s == "TaskConformance" and kw.get("activation") == {"version": "11.1.0"} for s, kw in trt)
    mm = _conformance_classes(PLUGINS / "facelib-cambricon")
    assert any(
        s == "TaskConformance" and kw.get("options") == {"mutable": False} and kw.get("fixed_shapes") for s, kw in mm
    )


def test_every_plugin_folder_is_listed() -> None:
    """The four device plugins above, and LiteRT: it runs only packages with TFLite sources (the
    suite's FSA-Net/UltraFace/FOMM/FaceFormer cases do not apply), on the real runtime, and its own
    tests cover the session contract (plugins/facelib-litert/tests)."""
    assert sorted(p.name for p in PLUGINS.iterdir() if (p / "pyproject.toml").is_file()) == sorted(
        ["facelib-tensorrt", "facelib-ascend", "facelib-sophon", "facelib-cambricon", "facelib-litert"]
    )


def test_result_comparison_catches_differences() -> None:
    """The comparison the suite uses fails on a small numeric change and on any structural change."""
    from facelib.results import BlendshapeFrame, FaceBlendshapes

    face = FaceBlendshapes(np.array([1.0, 2.0, 3.0, 4.0], np.float32), 0.9, np.full(52, 0.5, np.float32))
    frame = BlendshapeFrame(0, 0.0, (face,))
    nudged = attrs.evolve(face, blendshapes=face.blendshapes + np.float32(2e-5))
    same = differences(frame, frame)
    assert set(same) == {
        "result.index",
        "result.timestamp_ms",
        "result.faces[].box",
        "result.faces[].score",
        "result.faces[].blendshapes",
    } and set(same.values()) == {0.0}
    with pytest.raises(AssertionError, match="blendshapes"):
        assert_results_match(attrs.evolve(frame, faces=(nudged,)), frame, "nudged")
    with pytest.raises(AssertionError, match="length"):
        assert_results_match(attrs.evolve(frame, faces=()), frame, "no face")
    with pytest.raises(AssertionError, match="None"):
        assert_results_match(attrs.evolve(frame, faces=(attrs.evolve(face, landmarks=np.zeros((478, 3))),)), frame, "x")
