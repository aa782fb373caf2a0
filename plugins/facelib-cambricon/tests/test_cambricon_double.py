"""The MagicMind double enforces what the real API does (so the plugin is held to it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _network(mm: object, onnx: Path) -> object:
    from magicmind.python.runtime.parser import Parser

    network = mm.Network()  # type: ignore[attr-defined]
    assert Parser(mm.ModelKind.kOnnx).parse(network, str(onnx)).ok()  # type: ignore[attr-defined]
    return network


def test_status_objects_and_builder_refusals(cambricon: type, models_dir: Path, tmp_path: Path) -> None:
    import magicmind.python.runtime as mm
    from magicmind.python.runtime.parser import Parser

    onnx = models_dir / "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    assert not Parser(mm.ModelKind.kOnnx).parse(mm.Network(), str(tmp_path / "missing.onnx")).ok()
    with pytest.raises(TypeError):
        Parser(mm.ModelKind.kOnnx).parse(mm.Network(), onnx)  # a Path is not a str
    config = mm.BuilderConfig()
    assert not config.parse_from_string('{"precision_config": {"precision_mode": "int3"}}').ok()
    assert not config.parse_from_string("{not json").ok()
    network = _network(mm, onnx)
    assert mm.Builder().build_model("m", network, config) is None  # batch dim still -1 in a fixed build
    assert network.get_input(0).set_dimension(mm.Dims((2, 64, 64, 3))).ok()
    assert not network.get_input(0).set_dimension(mm.Dims((2, 32, 64, 3))).ok()
    assert config.parse_from_string('{"precision_config": {"precision_mode": "qint8_mixed_float16"}}').ok()
    assert mm.Builder().build_model("m", network, config) is None  # quantized without calibration


def test_runtime_order_dtypes_and_sync(cambricon: type, models_dir: Path, tmp_path: Path) -> None:
    import magicmind.python.runtime as mm

    network = _network(mm, models_dir / "mediapipe/face_blendshapes.onnx")
    model = mm.Builder().build_model("b", network, mm.BuilderConfig())
    assert model.serialize_to_file(str(tmp_path / "b.mm")).ok()
    loaded = mm.Model()
    assert loaded.deserialize_from_file(str(tmp_path / "b.mm")).ok()
    device = mm.Device()
    device.id = 0
    assert device.active().ok()
    context = loaded.create_i_engine().create_i_context()
    queue = device.create_queue()
    inputs = context.create_inputs()
    assert not inputs[0].from_numpy(np.zeros((1, 146, 2), np.float64)).ok()  # dtype checked
    assert inputs[0].from_numpy(np.zeros((1, 146, 2), np.float32)).ok()
    with pytest.raises(TypeError):
        context.enqueue(inputs, (), queue)  # outputs must be a list the runtime appends to
    outputs: list[object] = []
    assert context.enqueue(inputs, outputs, queue).ok() and len(outputs) == 1
    with pytest.raises(RuntimeError, match="sync"):
        outputs[0].asnumpy()
    assert queue.sync().ok() and outputs[0].asnumpy().shape == (52,)
    bad = mm.Device()
    bad.id = 5
    assert not bad.active().ok() and bad.create_queue() is None


@pytest.mark.parametrize("count", [1, 3])
def test_calibration_delivers_every_sample_in_magicmind_call_order(
    cambricon: type, models_dir: Path, count: int
) -> None:
    """MagicMind calls reset(), then next() before each get_sample(); all samples arrive, first included."""
    import magicmind.python.runtime as mm
    from facelib_cambricon.builder import _Samples

    rng = np.random.default_rng(0)
    samples = [rng.standard_normal((1, 64, 64, 3)).astype(np.float32) for _ in range(count)]
    network = _network(mm, models_dir / "fsanet/fsanet_capsule_3_16_2_21_5.onnx")
    assert network.get_input(0).set_dimension(mm.Dims((1, 64, 64, 3))).ok()
    config = mm.BuilderConfig()
    assert config.parse_from_string('{"precision_config": {"precision_mode": "qint8_mixed_float16"}}').ok()
    device = mm.Device()
    device.id = 0
    assert device.active().ok()
    calibrator = mm.Calibrator([_Samples.make(mm, samples)])
    status = calibrator.calibrate(network, config)
    assert status.ok(), status
    seen = calibrator.samples_seen[0]
    assert len(seen) == count
    for got, want in zip(seen, samples):
        np.testing.assert_array_equal(got, want)
    source = _Samples.make(mm, samples)
    assert source.get_sample() is None  # nothing loaded before the first next()
