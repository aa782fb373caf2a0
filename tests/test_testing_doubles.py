"""facelib.testing.doubles: SDK doubles are put in place and every trace of them is taken away."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from facelib.testing.doubles import load_module, sdk_doubles


@pytest.fixture
def fake_sdk(tmp_path: Path) -> Path:
    (tmp_path / "fakesdk").mkdir()
    (tmp_path / "fakesdk" / "__init__.py").write_text("import os\nDEVICES = int(os.environ['FAKESDK_DEVICES'])\n")
    (tmp_path / "helper.py").write_text("VALUE = 7\n")
    return tmp_path


def test_doubles_are_importable_inside_and_gone_after(fake_sdk: Path) -> None:
    path, env = list(sys.path), dict(os.environ)
    with sdk_doubles(fake_sdk, ["fakesdk"], {"FAKESDK_DEVICES": "3"}):
        import fakesdk  # type: ignore[import-not-found]

        assert fakesdk.DEVICES == 3
        assert os.environ["FACELIB_HOME"] != env.get("FACELIB_HOME")  # a scratch cache, not the user's
        os.environ["SET_INSIDE"] = "1"
    assert "fakesdk" not in sys.modules and sys.path == path and dict(os.environ) == env
    with pytest.raises(ImportError):
        import fakesdk


def test_hidden_modules_fail_to_import_and_place_none_leaves_no_path(fake_sdk: Path) -> None:
    with sdk_doubles(fake_sdk, ["fakesdk"], place="none", hide=["fakesdk"]):
        assert str(fake_sdk) not in sys.path
        with pytest.raises(ImportError):
            import fakesdk  # noqa: F401
    assert "fakesdk" not in sys.modules


def test_load_module_by_file_leaves_sys_path_alone(fake_sdk: Path) -> None:
    path = list(sys.path)
    helper = load_module(fake_sdk / "helper.py", "facelib_test_helper")
    assert helper.VALUE == 7 and sys.path == path
    assert load_module(fake_sdk / "helper.py", "facelib_test_helper") is helper  # imported once
    del sys.modules["facelib_test_helper"]
