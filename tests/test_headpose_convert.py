"""FSA-Net / UltraFace converters: the real .pb through tf2onnx, copies, card records, errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from headpose_support import FSANET_STEMS, TOLERANCE_DEG, load_reference

from facelib.errors import ConversionError, InputError, ModelFileError
from facelib.models.convert import fsanet, ultraface
from facelib.models.package import ModelPackage, sha256_file
from facelib.processing.fsanet import min_max_stretch
from facelib.tasks.head_pose import HeadPose

HAVE_TF = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("tf2onnx") is not None


@pytest.mark.convert
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TF, reason="converting .pb needs tensorflow and tf2onnx (pip install 'facelib[convert]')")
def test_convert_real_pb_matches_upstream(models_dir, reference_dir, tmp_path):
    source = models_dir / "fsanet" / f"{FSANET_STEMS['capsule']}.pb"
    package = fsanet.build_package({"capsule": source}, tmp_path / "pkg")
    card = package.card
    assert card.source["files"]["capsule"]["sha256"] == sha256_file(source)
    assert card.source["files"]["capsule"]["is_upstream_file"] is True
    assert card.source["tool"].startswith("tf2onnx")
    assert "ensemble" not in card.files and card.variant == "capsule"
    import onnx

    model = onnx.load(str(package.path("capsule")))
    assert model.ir_version == 10 and any(o.domain == "" and o.version == 17 for o in model.opset_import)
    ref = load_reference(reference_dir)
    with HeadPose(package) as task:
        for kind, crops in (("raw", ref["crops_bgr_u8"]), ("minmax", min_max_stretch(ref["crops_bgr_u8"]))):
            mean, _ = task.predict_crops(crops.astype(np.float32))
            np.testing.assert_allclose(mean, ref[f"{kind}_capsule_3_16_2_21_5"], atol=TOLERANCE_DEG)


def test_onnx_sources_are_recorded(models_dir, tmp_path):
    sources = {role: models_dir / "fsanet" / f"{stem}.onnx" for role, stem in FSANET_STEMS.items()}
    package = fsanet.build_package(sources, tmp_path / "pkg")
    assert package.validate() == []
    for role in FSANET_STEMS:
        info = package.card.source["files"][role]
        assert info["sha256"] == sha256_file(sources[role])
        assert info["upstream_sha256"] == fsanet.UPSTREAM_SHA256[role]
        assert info["map_loops_vectorised"] == 1
    assert package.card.files["ensemble"].outputs[-1].name == "pose"
    import onnx

    ensemble = onnx.load(str(package.path("ensemble")))
    assert not [n for n in ensemble.graph.node if n.op_type == "Loop"]  # per-face loops vectorised
    # the upstream .pb hashes recorded in the converter are the files in ../shared
    for role, stem in FSANET_STEMS.items():
        assert sha256_file(models_dir / "fsanet" / f"{stem}.pb") == fsanet.UPSTREAM_SHA256[role]


def test_fsanet_converter_errors(models_dir, tmp_path):
    good = models_dir / "fsanet" / f"{FSANET_STEMS['capsule']}.onnx"
    with pytest.raises(InputError, match="must be among"):
        fsanet.build_package({"other": good}, tmp_path / "a")
    with pytest.raises(InputError, match="not found"):
        fsanet.build_package({"capsule": tmp_path / "missing.pb"}, tmp_path / "b")
    txt = tmp_path / "x.txt"
    txt.write_text("hello")
    with pytest.raises(InputError, match=r"\.pb or \.onnx"):
        fsanet.build_package({"capsule": txt}, tmp_path / "c")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ModelFileError):
        fsanet.build_package({"capsule": corrupt}, tmp_path / "d")
    wrong = models_dir / "ultraface" / "version-RFB-320.onnx"
    with pytest.raises(ConversionError, match="expected input"):
        fsanet.build_package({"capsule": wrong}, tmp_path / "e")


@pytest.mark.skipif(not HAVE_TF, reason="needs tensorflow to parse a .pb")
def test_fsanet_converter_rejects_non_fsanet_pb(tmp_path):
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\x0a\x03abc" * 10)
    with pytest.raises(ConversionError):
        fsanet.build_package({"capsule": bad}, tmp_path / "pkg")


def test_missing_tensorflow_is_a_clear_error(models_dir, tmp_path, monkeypatch):
    import facelib.errors as errors

    def fake_require(module, extra, purpose):
        raise errors.MissingDependencyError(module, extra, purpose)

    monkeypatch.setattr(errors, "require", fake_require)
    with pytest.raises(errors.MissingDependencyError, match=r"facelib\[convert\]"):
        fsanet.build_package({"capsule": models_dir / "fsanet" / f"{FSANET_STEMS['capsule']}.pb"}, tmp_path / "p")


def test_ultraface_converter(models_dir, tmp_path):
    source = models_dir / "ultraface" / "version-RFB-320.onnx"
    package = ultraface.build_package({"detector": source}, tmp_path / "uf")
    assert sha256_file(package.path("detector")) == sha256_file(source)  # copied unchanged
    assert package.card.source["files"]["detector"]["upstream_url"].endswith("models/onnx/version-RFB-320.onnx")
    assert ModelPackage.load(tmp_path / "uf").validate() == []
    with pytest.raises(ConversionError, match="expected an input"):
        ultraface.build_package({"detector": source}, tmp_path / "x", variant="RFB-640")
    with pytest.raises(InputError, match="unknown UltraFace variant"):
        ultraface.build_package({"detector": source}, tmp_path / "y", variant="RFB-999")
    with pytest.raises(InputError, match="one source role"):
        ultraface.build_package({"model": source}, tmp_path / "z")


def _separable(stride: int = 1, extra_user: bool = False):
    """A 3-channel depthwise 3x3 (with bias) then a 1x1 convolution to 16 channels, random weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.normal(size=(3, 1, 3, 3)).astype(np.float32), "dw"),
        numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "dw_b"),
        numpy_helper.from_array(rng.normal(size=(16, 3, 1, 1)).astype(np.float32), "pw"),
        numpy_helper.from_array(rng.normal(size=16).astype(np.float32), "pw_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "dw", "dw_b"], ["d"], name="dw", group=3, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["d", "pw", "pw_b"], ["y"], name="pw", strides=[stride, stride]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if extra_user:
        nodes.append(helper.make_node("Relu", ["d"], ["r"], name="relu"))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes, "sep", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])], outputs, inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    return model


def _run(model, x):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})


def test_fold_input_depthwise_is_the_same_convolution() -> None:
    x = np.random.default_rng(2).normal(size=(2, 3, 8, 8)).astype(np.float32)
    model = _separable()
    want = _run(model, x)[0]
    assert fsanet.fold_input_depthwise(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    assert {a.name for a in model.graph.node[0].attribute} == {"pads"}  # no group left
    np.testing.assert_allclose(_run(model, x)[0], want, rtol=1e-5, atol=1e-5)
    for kept in (_separable(stride=2), _separable(extra_user=True)):  # strided 1x1; output used twice
        assert fsanet.fold_input_depthwise(kept) == 0
        assert len(kept.graph.node) >= 2


def test_optimised_ensemble_equals_the_released_models_on_aflw_crops(models_dir, reference_dir, tmp_path):
    """The converted graph (map_fn vectorised, colour depthwise folded, three variants merged)
    against the upstream TF graphs' outputs on real AFLW2000 crops, raw and min-max stretched."""
    import onnx
    from headpose_support import REF_KEYS

    sources = {role: models_dir / "fsanet" / f"{stem}.onnx" for role, stem in FSANET_STEMS.items()}
    package = fsanet.build_package(sources, tmp_path / "pkg")
    for role in FSANET_STEMS:
        assert package.card.source["files"][role]["depthwise_folded"] == 2
        assert package.card.source["files"][role]["reshapes_made_constant"] == 3
    ensemble = onnx.load(str(package.path("ensemble")))
    grouped = [
        n.name
        for n in ensemble.graph.node
        if n.op_type == "Conv" and any(a.name == "group" and a.i == 3 for a in n.attribute)
    ]
    assert grouped == []  # the six colour depthwise convolutions are gone
    ref = load_reference(reference_dir)
    with HeadPose(package, backend="onnxruntime") as task:
        for kind, crops in (("raw", ref["crops_bgr_u8"]), ("minmax", min_max_stretch(ref["crops_bgr_u8"]))):
            mean, per_variant = task.predict_crops(crops.astype(np.float32))
            np.testing.assert_allclose(mean, ref[f"{kind}_ensemble"], atol=1e-4)
            for role, key in REF_KEYS.items():
                np.testing.assert_allclose(per_variant[role], ref[f"{kind}_{key}"], atol=1e-4)


def test_constant_reshape_shapes_keep_every_batch_size() -> None:
    """Reshape (N, 4, 4, 2) -> (N, 16, 2) with the target built from Shape at run time."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.asarray([0], np.int64), "zero"),
        numpy_helper.from_array(np.asarray([16, 2], np.int64), "tail"),
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "tail"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"], name="r"),
    ]
    graph = helper.make_graph(
        nodes,
        "r",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    assert fsanet.constant_reshape_shapes(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Reshape"]
    for batch in (1, 5):
        x = np.arange(batch * 32, dtype=np.float32).reshape(batch, 4, 4, 2)
        np.testing.assert_array_equal(_run(model, x)[0], x.reshape(batch, 16, 2))
