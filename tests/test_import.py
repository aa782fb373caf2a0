"""``import facelib`` is fast, lazy and offline."""

from __future__ import annotations

import subprocess
import sys

import facelib

HEAVY = ("onnxruntime", "cv2", "librosa", "torch", "tensorflow", "numpy", "onnx")


def test_import_loads_no_heavy_module() -> None:
    code = f"import sys, facelib\nheavy = [m for m in {HEAVY!r} if m in sys.modules]\nprint(','.join(heavy))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_time_is_small() -> None:
    code = "import time; t = time.perf_counter(); import facelib; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    assert min(times) < 0.2, times


def test_import_does_not_touch_the_network() -> None:
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise SystemExit('network used at import')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import facelib; facelib.list_backends()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names_resolve() -> None:
    for name in facelib.__all__:
        assert getattr(facelib, name) is not None, name


def test_unknown_attribute_is_attribute_error() -> None:
    try:
        facelib.DoesNotExist  # noqa: B018
    except AttributeError as exc:
        assert "DoesNotExist" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
