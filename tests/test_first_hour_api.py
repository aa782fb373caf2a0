"""The Python API as a new user meets it (issue 20): a crashing plugin under "auto", task and result
reprs, named blendshapes in ``to_dict()``, and clear errors for ``None`` inputs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from headpose_support import build_fsanet, build_ultraface

from facelib.backends import Availability, Backend, Session, register_backend, reload_plugins
from facelib.errors import BackendError, InputError
from facelib.processing.arkit import ARKIT_NAMES
from facelib.results import BlendshapeFrame, FaceBlendshapes


class _Crashing(Backend):
    """A third-party backend with a high priority whose load() raises (a broken SDK install)."""

    name: ClassVar[str] = "test-crashing"
    priority: ClassVar[int] = 1000

    @classmethod
    def available(cls) -> Availability:
        return Availability(True)

    def load(self, artefact: Path) -> Session:
        raise RuntimeError("vendor runtime: device lost\nsecond line of a vendor dump")


@pytest.fixture
def crashing_plugin() -> Iterator[None]:
    reload_plugins()
    register_backend(_Crashing, origin="test plugin")
    yield
    reload_plugins()


@pytest.fixture(scope="module")
def packages(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("api")
    return build_fsanet(models_dir, root / "fsanet"), build_ultraface(models_dir, root / "uf")


def test_auto_falls_back_when_a_plugin_load_raises(crashing_plugin, packages, media_dir, caplog):
    from facelib import HeadPose

    fsanet, ultraface = packages
    with caplog.at_level(logging.WARNING, logger="facelib.backends"), HeadPose(fsanet, detector=ultraface) as pose:
        faces = pose.predict(media_dir / "images" / "obama.jpg")
        assert pose.backend.name == "onnxruntime"
    assert len(faces) == 1
    warnings = [r.getMessage() for r in caplog.records if "test-crashing" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "device lost" in warnings[0]


def test_a_named_backend_that_crashes_is_a_backend_error(crashing_plugin, packages, media_dir):
    from facelib import HeadPose

    fsanet, ultraface = packages
    with (
        pytest.raises(BackendError, match="'test-crashing' failed to load the model: RuntimeError: vendor"),
        HeadPose(fsanet, detector=ultraface, backend="test-crashing") as pose,
    ):
        pose.predict(media_dir / "images" / "obama.jpg")


def test_task_repr_names_model_and_backend(packages):
    from facelib import HeadPose

    fsanet, ultraface = packages
    with HeadPose(fsanet, detector=ultraface) as pose:
        text = repr(pose)
    assert text.startswith("HeadPose('fsanet', backend=") and "object at" not in text


def test_predict_none_is_an_input_error(packages):
    from facelib import HeadPose

    fsanet, ultraface = packages
    with HeadPose(fsanet, detector=ultraface) as pose:
        for bad in (None, 3, [None]):
            with pytest.raises(InputError, match="expected an image file path or an RGB uint8 array"):
                pose.predict(bad)  # type: ignore[arg-type]


def _face() -> FaceBlendshapes:
    weights = np.zeros(52, np.float32)
    weights[ARKIT_NAMES.index("jawOpen")] = 0.75
    return FaceBlendshapes(
        box=np.array([1, 2, 3, 4], np.float32),
        score=0.9,
        blendshapes=weights,
        landmarks=np.zeros((478, 3), np.float32),
        transform=np.eye(4, dtype=np.float32),
        head_pose=np.array([10, -5, 2], np.float32),
    )


def test_blendshape_repr_is_short_and_to_dict_names_the_shapes():
    frame = BlendshapeFrame(0, 0.0, (_face(),))
    assert len(repr(frame)) < 400 and "jawOpen=0.75" in repr(frame) and "yaw=10.0" in repr(frame)
    data = frame.to_dict()
    face = data["faces"][0]
    assert list(face["blendshapes"]) == list(ARKIT_NAMES) and face["blendshapes"]["jawOpen"] == 0.75
    assert face["head_pose"] == {"yaw": 10.0, "pitch": -5.0, "roll": 2.0}
    assert len(face["landmarks"]) == 478 and face["box"] == [1.0, 2.0, 3.0, 4.0]


def test_onnxruntime_warnings_of_plugin_sessions_are_quiet(tmp_path):
    """A plugin's own onnxruntime sessions print no per-initializer warnings once facelib loaded."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import numpy as np, onnx
        from onnx import TensorProto, helper, numpy_helper
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
        unused = numpy_helper.from_array(np.ones((2,), np.float32), "unused_weight")
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y], initializer=[unused])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 9
        onnx.save(model, {str(tmp_path / "m.onnx")!r})
        import facelib
        facelib.list_backends()  # what every task does first: the plugins are loaded
        import onnxruntime as ort
        ort.InferenceSession({str(tmp_path / "m.onnx")!r}, providers=["CPUExecutionProvider"])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "unused_weight" not in proc.stderr


def test_the_backend_in_writing_a_backend_md_works(tmp_path, packages, media_dir):
    """The doc's minimal backend, executed as written: it instantiates and runs a real model."""
    import re

    from facelib import HeadPose

    text = (Path(__file__).resolve().parents[1] / "docs" / "writing-a-backend.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "class MySession(Session)" in b]
    assert len(blocks) == 1
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "writing-a-backend.md", "exec"), namespace)
    backend_cls = namespace["MyDeviceBackend"]
    reload_plugins()
    try:
        register_backend(backend_cls, origin="doc")  # type: ignore[arg-type]
        fsanet, ultraface = packages
        with HeadPose(fsanet, detector=ultraface, backend="mydevice") as pose:
            faces = pose.predict(media_dir / "images" / "obama.jpg")
            assert pose.backend.name == "mydevice"
        assert len(faces) == 1
    finally:
        reload_plugins()
