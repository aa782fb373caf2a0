"""Every output file appears only when complete (issue 20): errors, Ctrl-C and SIGTERM leave the
target as it was and no partial file behind; outputs of the wrong kind fail with one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from facelib.errors import FacelibError, InputError, NoFaceError
from facelib.io.atomic import AtomicOutput
from facelib.io.image import write_image
from facelib.io.livelink import LiveLinkCSVWriter, read_livelink_csv, write_livelink_csv
from facelib.io.mesh import NpyFrameWriter
from facelib.io.video import VideoWriter
from facelib.results import BlendshapeFrame, FaceBlendshapes

ROOT = Path(__file__).resolve().parents[1]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def test_atomic_output_commits_or_discards(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), AtomicOutput(target) as out:
        out.partial.write_bytes(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []
    with AtomicOutput(target) as out:
        out.partial.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # not visible until committed
    assert target.read_bytes() == b"new" and _leftovers(tmp_path) == []


def test_video_writer_error_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    frame = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(RuntimeError), VideoWriter(out, 10) as writer:
        for _ in range(3):
            writer.write(frame)
        raise RuntimeError("interrupted")
    assert not out.exists() and _leftovers(tmp_path) == []
    with VideoWriter(out, 10) as writer:
        for _ in range(3):
            writer.write(frame)
    assert out.stat().st_size > 0 and _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["x.png", "x.npy", "x", "x.jpg.txt"])
def test_video_writer_refuses_non_video_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="video suffix"):
        VideoWriter(tmp_path / name, 10)


def test_write_image_unknown_suffix_and_directory(tmp_path: Path) -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(InputError, match=r"cannot write an image as '\.xyz'"):
        write_image(tmp_path / "out.xyz", image)
    with pytest.raises(InputError, match="is a directory"):
        write_image(tmp_path, image)
    assert _leftovers(tmp_path) == [] and not (tmp_path / "out.xyz").exists()


def _face(value: float) -> FaceBlendshapes:
    return FaceBlendshapes(
        box=np.array([0, 0, 10, 10], np.float32),
        score=1.0,
        blendshapes=np.full(52, value, np.float32),
        head_pose=np.array([10.0, -5.0, 2.0], np.float32),
    )


def test_livelink_csv_into_a_directory_is_a_facelib_error(tmp_path: Path) -> None:
    with pytest.raises(FacelibError, match="is a directory"):
        write_livelink_csv([BlendshapeFrame(0, 0.0, (_face(0.5),))], tmp_path)


def test_livelink_csv_without_any_face_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "take.csv"
    frames = [BlendshapeFrame(i, i * 33.3, ()) for i in range(5)]
    with pytest.raises(NoFaceError, match="no face in any of the 5 frames"):
        write_livelink_csv(frames, out)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_livelink_csv_leading_frames_without_a_face_hold_the_first_face(tmp_path: Path) -> None:
    out = tmp_path / "take.csv"
    frames = [BlendshapeFrame(0, 0.0, ()), BlendshapeFrame(1, 33.3, ()), BlendshapeFrame(2, 66.6, (_face(0.25),))]
    frames.append(BlendshapeFrame(3, 100.0, ()))
    write_livelink_csv(frames, out, fps=30)
    take = read_livelink_csv(out, fps=30)
    assert len(take.times) == 4 and np.all(np.diff(take.times) > 0)
    np.testing.assert_allclose(take.blendshapes, 0.25)  # no all-zero row that reads as a neutral face
    np.testing.assert_allclose(take.rotations[:, 0], 10.0 / 180.0, atol=1e-6)


def test_livelink_zero_mode_still_writes_zeros(tmp_path: Path) -> None:
    out = tmp_path / "take.csv"
    write_livelink_csv([BlendshapeFrame(0, 0.0, ()), BlendshapeFrame(1, 33.3, (_face(0.5),))], out, missing="zero")
    take = read_livelink_csv(out)
    assert take.blendshapes[0].max() == 0 and take.blendshapes[1].min() == pytest.approx(0.5)


# --- interruption of a running process ------------------------------------------------------

_WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from facelib.cli import _sigterm_unwinds
    kind, out = sys.argv[1], sys.argv[2]

    def frames():
        i = 0
        while True:
            if i == 3:
                print("writing", flush=True)
            i += 1
            time.sleep(0.02)
            yield i

    with _sigterm_unwinds():
        if kind == "video":
            from facelib.io.video import VideoWriter
            with VideoWriter(out, 25) as w:
                for i in frames():
                    w.write(np.full((64, 64, 3), i % 255, np.uint8))
        elif kind == "csv":
            from facelib.io.livelink import LiveLinkCSVWriter
            from facelib.results import BlendshapeFrame, FaceBlendshapes
            face = FaceBlendshapes(box=np.zeros(4, np.float32), score=1.0, blendshapes=np.full(52, 0.5, np.float32))
            with LiveLinkCSVWriter(out) as w:
                for i in frames():
                    w.write(BlendshapeFrame(i, i * 10.0, (face,)))
        elif kind == "npy":
            from facelib.io.mesh import NpyFrameWriter
            with NpyFrameWriter(out) as w:
                for i in frames():
                    w.write(np.full((100, 3), i, np.float32))
        elif kind == "sink":
            from facelib.io.sinks import open_sink
            sink = open_sink(out, 25)
            try:
                for i in frames():
                    sink.write(np.full((16, 16, 3), i % 255, np.uint8))
            except BaseException:
                sink.abort()
                raise
            sink.close()
        elif kind == "json":
            from facelib.io.blendshape_export import save_json
            from facelib.results import BlendshapeFrame
            save_json((BlendshapeFrame(i, i * 10.0, ()) for i in frames()), out)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("video", "out.mp4"),
        ("csv", "take.csv"),
        ("npy", "mesh.npy"),
        ("sink", "frames.npy"),
        ("sink", "motion.mp4"),
        ("json", "bs.json"),
    ],
)
def test_signal_mid_write_leaves_nothing(tmp_path: Path, kind: str, name: str, sig: signal.Signals) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER_SCRIPT)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(script), kind, str(out_dir / name)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "writing", proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 20  # an encoder creates its file once it has a few frames
        while not _leftovers(out_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _leftovers(out_dir), "the writer should be writing a partial file by now"
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert sorted(p.name for p in out_dir.iterdir()) == [], "an interrupted write left files behind"


def test_cli_sigterm_exits_143_and_sigint_130(tmp_path: Path) -> None:
    """``facelib`` turns SIGTERM into an unwinding exception (exit 143) and Ctrl-C into 130."""
    code = textwrap.dedent(
        """
        import argparse, sys, time
        import facelib.cli as cli
        def slow(args):
            print("ready", flush=True)
            time.sleep(30)
            return 0
        class Parser:
            def parse_args(self, argv):
                return argparse.Namespace(func=slow, debug=False)
        cli.build_parser = Parser
        sys.exit(cli.main([]))
        """
    )
    for sig, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == status


def test_json_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """``facelib ... --json | head -c 1`` with more JSON than a pipe holds: no BrokenPipeError."""
    script = tmp_path / "big.py"
    script.write_text(
        textwrap.dedent(
            """
            import argparse, sys
            import facelib.cli as cli
            from facelib.commands._common import _print_json
            def big(args):
                for i in range(200):
                    _print_json({"frame": i, "values": list(range(2000))})
                return 0
            class Parser:
                def parse_args(self, argv):
                    return argparse.Namespace(func=big, debug=False)
            cli.build_parser = Parser
            sys.exit(cli.main([]))
            """
        )
    )
    proc = subprocess.run(
        ["bash", "-c", f'{sys.executable} {script} | head -c 1; echo " ${{PIPESTATUS[0]}}"'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "BrokenPipeError" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == "{ 141\n"


def test_npy_frame_writer_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "a.npy"
    with NpyFrameWriter(out) as writer:
        writer.write(np.ones((4, 3), np.float32))
        assert not out.exists()
    assert np.load(out).shape == (1, 4, 3) and _leftovers(tmp_path) == []


def test_livelink_writer_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    with LiveLinkCSVWriter(out) as writer:
        writer.write(BlendshapeFrame(0, 0.0, (_face(0.1),)))
        assert not out.exists()
    assert len(read_livelink_csv(out).times) == 1
    assert json.dumps(_leftovers(tmp_path)) == "[]"
    assert os.listdir(tmp_path) == ["t.csv"]
