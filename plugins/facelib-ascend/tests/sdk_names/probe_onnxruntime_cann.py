"""Ask the real ``onnxruntime-cann`` wheel which CANNExecutionProvider options it accepts.

    python plugins/facelib-ascend/tests/sdk_names/probe_onnxruntime_cann.py [version]

The wheel's provider library (``libonnxruntime_providers_cann.so``) needs CANN's
``libascendcl.so``, ``libacl_op_compiler.so`` and ``libfmk_onnx_parser.so``, which are not on
PyPI.  The probe compiles stand-ins for them with ``gcc`` (every undefined symbol returns 0;
``aclrtGetDeviceCount`` reports one device, ``aclrtGetSocName`` an Ascend310P3), installs the
wheel into a temporary virtual environment, and creates a session with each candidate option.  Options are parsed by
onnxruntime's own ``ProviderOptionsParser`` before CANN does any work, so an unknown key shows
as "Unknown provider option" and a silent fall back to CPUExecutionProvider.  Needs gcc, nm and
about 25 MB of download.  Writes ``onnxruntime-cann-<version>.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CANDIDATES = (
    "device_id",
    "npu_mem_limit",
    "arena_extend_strategy",
    "enable_cann_graph",
    "enable_cann_subgraph",
    "dump_graphs",
    "dump_om_model",
    "precision_mode",
    "precision_mode_v2",
    "op_select_impl_mode",
    "optypelist_for_implmode",
    "input_format",
    "dynamic_batch_size",
    "dynamic_image_size",
    "dynamic_dims",
    "do_copy_in_default_stream",
    "default_memory_arena_cfg",
)
VALUES = {
    "device_id": "0",
    "npu_mem_limit": "1073741824",
    "arena_extend_strategy": "kSameAsRequested",
    "enable_cann_graph": "True",
    "enable_cann_subgraph": "False",
    "dump_graphs": "False",
    "dump_om_model": "False",
    "do_copy_in_default_stream": "True",
}
PROBE = """
import json, sys, onnxruntime as ort
model = sys.argv[2]
result = {"version": ort.__version__, "available": ort.get_available_providers(), "accepted": [], "refused": []}
for key, value in json.loads(sys.argv[1]).items():
    s = ort.InferenceSession(model, providers=[("CANNExecutionProvider", {key: value}), "CPUExecutionProvider"])
    result["accepted" if "CANNExecutionProvider" in s.get_providers() else "refused"].append(key)
print(json.dumps(result))
"""


def _stub_libraries(provider_lib: Path, into: Path) -> None:
    nm = subprocess.run(["nm", "-D", "--undefined-only", str(provider_lib)], capture_output=True, text=True)
    symbols = [line.split()[-1] for line in nm.stdout.splitlines() if "@" not in line.split()[-1]]
    skip = {"Provider_GetHost", "_ITM_deregisterTMCloneTable", "_ITM_registerTMCloneTable", "__gmon_start__"}
    lines = ["#include <stdint.h>"]
    for i, sym in enumerate(s for s in symbols if s not in skip):
        if sym == "aclrtGetDeviceCount":
            lines.append("int aclrtGetDeviceCount(uint32_t *n) { *n = 1; return 0; }")
        elif sym == "aclrtGetSocName":
            lines.append('const char *aclrtGetSocName(void) { return "Ascend310P3"; }')
        else:
            lines.append(f'long stub_{i}(void) __asm__("{sym}");\nlong stub_{i}(void) {{ return 0; }}')
    (into / "stub.c").write_text("\n".join(lines) + "\n")
    (into / "empty.c").write_text("void facelib_empty(void) {}\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(into / "libascendcl.so"), str(into / "stub.c")], check=True)
    for name in ("libacl_op_compiler.so", "libfmk_onnx_parser.so"):
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(into / name), str(into / "empty.c")], check=True)


def _write_model(path: Path) -> None:
    """A one-MatMul ONNX file (written with this interpreter's onnx, kept out of the probe venv)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)


def main() -> None:
    version = sys.argv[1] if len(sys.argv) > 1 else "1.24.4"
    with tempfile.TemporaryDirectory(prefix="facelib-ort-cann-") as tmp:
        root = Path(tmp)
        subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
        py = root / "venv" / "bin" / "python"
        subprocess.run([str(py), "-m", "pip", "install", "-q", f"onnxruntime-cann=={version}", "numpy<2"], check=True)
        site = subprocess.run(
            [str(py), "-c", "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        capi = Path(site.stdout.strip() or next(root.glob("venv/lib/python*/site-packages/onnxruntime"))) / "capi"
        stubs = root / "stubs"
        stubs.mkdir()
        _stub_libraries(capi / "libonnxruntime_providers_cann.so", stubs)
        values = {key: VALUES.get(key, "x") for key in CANDIDATES}
        model = root / "matmul.onnx"
        _write_model(model)
        out = subprocess.run(
            [str(py), "-c", PROBE, json.dumps(values), str(model)],
            capture_output=True,
            text=True,
            env={"LD_LIBRARY_PATH": str(stubs), "PATH": "/usr/bin:/bin"},
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
    result["how"] = "probe_onnxruntime_cann.py: session per option with stubbed CANN libraries"
    target = HERE / f"onnxruntime-cann-{result['version']}.json"
    target.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{target.name}: accepted {result['accepted']}; refused {result['refused']}")


if __name__ == "__main__":
    main()
