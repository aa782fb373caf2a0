"""Live Link Face CSV and UDP, JSON / NPZ export of blendshape sequences."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from facelib.errors import InputError, MediaReadError
from facelib.io import livelink as ll
from facelib.io.blendshape_export import load_json, load_npz, save_json, save_npz
from facelib.processing.arkit import ARKIT_NAMES, arkit_index
from facelib.results import BlendshapeFrame, FaceBlendshapes

# The header published by public Live Link Face importers (Blender add-on LIVE_LINK_FACE_HEADER,
# Maya importers) — written out here by hand, not derived from facelib's constants.
PUBLISHED_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,EyeLookUpLeft,"
    "EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,EyeLookOutRight,EyeLookUpRight,"
    "EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,JawOpen,MouthClose,MouthFunnel,MouthPucker,"
    "MouthRight,MouthLeft,MouthSmileLeft,MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,"
    "MouthDimpleRight,MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,MouthUpperUpLeft,"
    "MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,BrowOuterUpRight,CheekPuff,"
    "CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,TongueOut,HeadYaw,HeadPitch,HeadRoll,"
    "LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll"
)


def _face(seed: int, pose: bool = True) -> FaceBlendshapes:
    rng = np.random.default_rng(seed)
    return FaceBlendshapes(
        box=np.array([10, 20, 110, 140], np.float32),
        score=0.9,
        blendshapes=rng.uniform(0, 1, 52).astype(np.float32),
        head_pose=np.array([12.0, -7.5, 3.0], np.float32) if pose else None,
    )


def _frames(n: int, fps: float = 30.0) -> list[BlendshapeFrame]:
    return [BlendshapeFrame(i, i * 1000.0 / fps, (_face(i),) if i != 2 else ()) for i in range(n)]


def test_header_is_the_published_one(tmp_path: Path) -> None:
    assert ",".join(ll.CSV_HEADER) == PUBLISHED_HEADER
    path = ll.write_livelink_csv(_frames(3), tmp_path / "take.csv")
    assert path.read_text().splitlines()[0] == PUBLISHED_HEADER


def test_timecodes() -> None:
    assert ll.format_timecode(0.0) == "00:00:00:00.000"
    assert ll.format_timecode(1.0) == "00:00:01:00.000"
    assert ll.format_timecode(45 / 60) == "00:00:00:45.000"
    assert ll.format_timecode(3723 + 30.5 / 60) == "01:02:03:30.500"
    assert ll.format_timecode(1 / 30, fps=30) == "00:00:00:01.000"
    assert ll.format_timecode(0.9999999) == "00:00:01:00.000"  # rounding carries into the second
    for i in range(200):
        t = i / 29.97
        assert abs(ll.parse_timecode(ll.format_timecode(t, 29.97), 29.97) - t) < 1e-3 / 29.97 + 1e-9
    with pytest.raises(InputError):
        ll.format_timecode(-1.0)
    with pytest.raises(InputError):
        ll.parse_timecode("12:00")


def test_csv_rows_and_roundtrip(tmp_path: Path) -> None:
    frames = _frames(5)
    path = ll.write_livelink_csv(frames, tmp_path / "take.csv", fps=60)
    lines = path.read_text().splitlines()
    assert len(lines) == 6
    cells = lines[2].split(",")
    assert len(cells) == 63 and cells[0] == "00:00:00:02.000" and cells[1] == "61"  # frame 1 at 30 fps
    jaw_open = PUBLISHED_HEADER.split(",").index("JawOpen")
    assert float(cells[jaw_open]) == pytest.approx(frames[1].faces[0].blendshapes[arkit_index("jawOpen")], abs=1e-7)
    head_yaw = PUBLISHED_HEADER.split(",").index("HeadYaw")
    assert float(cells[head_yaw]) == pytest.approx(12.0 / 180.0)
    assert lines[3].split(",")[2:] == lines[2].split(",")[2:]  # frame 2 has no face: held

    take = ll.read_livelink_csv(path, fps=60)
    assert take.present.all()
    np.testing.assert_allclose(take.times, [i / 30 for i in range(5)], atol=1e-6)
    for i in (0, 1, 3, 4):
        np.testing.assert_allclose(take.blendshapes[i], frames[i].faces[0].blendshapes, atol=1e-7)
    back = take.to_frames()
    np.testing.assert_allclose(back[4].faces[0].head_pose, [12.0, -7.5, 3.0], atol=1e-4)

    ll.write_livelink_csv(frames, tmp_path / "skip.csv", missing="skip")
    assert len((tmp_path / "skip.csv").read_text().splitlines()) == 5
    ll.write_livelink_csv(frames, tmp_path / "zero.csv", missing="zero")
    assert set((tmp_path / "zero.csv").read_text().splitlines()[3].split(",")[2:]) == {"0.00000000"}


def test_reader_51_shapes_other_case_and_order(tmp_path: Path) -> None:
    names = [n for n in PUBLISHED_HEADER.split(",")[2:54] if n != "TongueOut"][::-1]  # reversed, 51
    header = "timecode,BlendshapeCount," + ",".join(n.lower() for n in names) + ",MyCurve"
    rows = [f"00:00:00:{i:02d}.000,51," + ",".join(str(k / 100) for k in range(51)) + ",0.5" for i in range(3)]
    (tmp_path / "a.csv").write_text("\n".join([header, *rows]) + "\n")
    take = ll.read_livelink_csv(tmp_path / "a.csv")
    assert take.present.sum() == 51 and not take.present[ARKIT_NAMES.index("tongueOut")]
    for k, name in enumerate(names):
        assert take.blendshapes[0, arkit_index(name)] == pytest.approx(k / 100)
    assert take.extra["MyCurve"].tolist() == [0.5, 0.5, 0.5]
    assert take.rotations.shape == (3, 9) and not take.rotations.any()


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaReadError, match="not found"):
        ll.read_livelink_csv(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(MediaReadError, match="empty"):
        ll.read_livelink_csv(tmp_path / "empty.csv")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(MediaReadError, match="Timecode"):
        ll.read_livelink_csv(tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text(PUBLISHED_HEADER + "\n00:00:00:00.000,61,abc\n")
    with pytest.raises(MediaReadError, match="cells"):
        ll.read_livelink_csv(tmp_path / "y.csv")
    with pytest.raises(InputError):
        ll.write_livelink_csv([], tmp_path / "z.csv", missing="nope")


# --- UDP -----------------------------------------------------------------------------------


def _decode_like_pylivelinkface(data: bytes) -> tuple[str, str, int, float, int, int, tuple[float, ...]]:
    """Independent decoder following PyLiveLinkFace's documented offsets (uuid at bytes 4:41)."""
    device = data[4:41].decode()  # "$" + 36 characters
    (name_len,) = struct.unpack("!i", data[41:45])
    end = 45 + name_len
    name = data[45:end].decode()
    frame, sub, fps, den, count = struct.unpack("!if2ib", data[end : end + 17])
    assert count == 61
    values = struct.unpack("!61f", data[end + 17 :])
    return device, name, frame, sub, fps, den, values


def test_packet_layout_matches_pylivelinkface() -> None:
    weights = np.linspace(0, 1, 52, dtype=np.float32)
    device = "12345678-1234-1234-1234-123456789abc"
    data = ll.encode_packet(
        weights, np.full(9, 0.25), subject="Face", device_id=device, frame_number=1234, subframe=0.5
    )
    assert data[:4] == struct.pack("<I", 6)  # PyLiveLinkFace writes the version this way
    got_device, name, frame, sub, fps, den, values = _decode_like_pylivelinkface(data)
    assert (got_device, name, frame, sub, fps, den) == ("$" + device, "Face", 1234, 0.5, 60, 1)
    # UDP order is Unreal's EARFaceBlendShape: JawLeft (15) before JawRight (16), MouthLeft (21) before MouthRight
    assert values[15] == pytest.approx(weights[ARKIT_NAMES.index("jawLeft")])
    assert values[16] == pytest.approx(weights[ARKIT_NAMES.index("jawRight")])
    assert values[21] == pytest.approx(weights[ARKIT_NAMES.index("mouthLeft")])
    assert values[17] == pytest.approx(weights[ARKIT_NAMES.index("jawOpen")])
    assert values[52:] == pytest.approx([0.25] * 9)
    assert len(data) == 1 + 4 + 36 + 4 + 4 + 16 + 1 + 61 * 4


def test_decode_errors() -> None:
    good = ll.encode_packet(np.zeros(52), device_id="d", subject="s")
    with pytest.raises(InputError, match="version"):
        ll.decode_packet(b"\x05" + good[1:])
    with pytest.raises(InputError, match="truncated"):
        ll.decode_packet(good[:-3])
    with pytest.raises(InputError, match="trailing"):
        ll.decode_packet(good + b"\x00")
    with pytest.raises(InputError, match="52"):
        ll.encode_packet(np.zeros(51))


def test_sender_to_loopback_receiver() -> None:
    frames = _frames(4)
    with ll.LiveLinkReceiver(port=0, host="127.0.0.1") as receiver:
        with ll.LiveLinkSender("127.0.0.1", receiver.port, subject="facelib-test", fps=60) as sender:
            sent = [sender.send_frame(fr, use_timestamp=True) for fr in frames]
        assert sent[2] == 0 and all(s > 0 for i, s in enumerate(sent) if i != 2)
        packets = [receiver.receive(timeout=2.0) for _ in range(3)]
    for packet, i in zip(packets, (0, 1, 3)):
        face = frames[i].faces[0]
        assert packet.subject == "facelib-test" and len(packet.device_id) == 36
        np.testing.assert_array_equal(packet.blendshapes, face.blendshapes)
        np.testing.assert_allclose(packet.rotations[:3], np.asarray(face.head_pose) / 180, rtol=1e-6)
        assert packet.seconds == pytest.approx(frames[i].timestamp_ms / 1000, abs=1e-6)


def test_sender_bad_arguments() -> None:
    with pytest.raises(InputError, match="port"):
        ll.LiveLinkSender("127.0.0.1", 0)
    with pytest.raises(InputError, match="resolve"):
        ll.LiveLinkSender("no-such-host.invalid", 11111)


# --- JSON / NPZ ----------------------------------------------------------------------------


def _assert_same(a: list[BlendshapeFrame], b: list[BlendshapeFrame]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.index, x.timestamp_ms, len(x.faces)) == (y.index, pytest.approx(y.timestamp_ms), len(y.faces))
        for f, g in zip(x.faces, y.faces):
            np.testing.assert_allclose(f.blendshapes, g.blendshapes, atol=1e-6)
            np.testing.assert_allclose(f.box, g.box, atol=1e-5)
            assert (f.head_pose is None) == (g.head_pose is None)


def test_json_and_npz_roundtrip(tmp_path: Path) -> None:
    frames = _frames(4)
    frames.append(BlendshapeFrame(4, 200.0, (_face(7), _face(8, pose=False))))
    _assert_same(frames, load_json(save_json(iter(frames), tmp_path / "a.json")))
    _assert_same(frames, load_npz(save_npz(frames, tmp_path / "a.data")))
    data = np.load(tmp_path / "a.data")
    assert data["blendshapes"].shape == (5, 2, 52) and np.isnan(data["blendshapes"][0, 1]).all()


def test_json_npz_errors(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(MediaReadError, match="not a facelib"):
        load_json(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(MediaReadError, match="JSON"):
        load_json(tmp_path / "y.json")
    np.savez(tmp_path / "z.npz", a=np.zeros(3))
    with pytest.raises(MediaReadError, match="missing"):
        load_npz(tmp_path / "z.npz")


def test_decodes_a_packet_built_like_pylivelinkface() -> None:
    """PyLiveLinkFace.encode(): '<I' version, '$' + uuid, '!i' name length, name, '!II' frames and
    sub-frame bits, '!II' fps and denominator, '!B61f' values."""
    device = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    values = [i / 100 for i in range(61)]
    data = (
        struct.pack("<I", 6)
        + ("$" + device).encode()
        + struct.pack("!i", 4)
        + b"Anna"
        + struct.pack("!II", 2_000_000, 1056060032)
        + struct.pack("!II", 60, 1)
        + struct.pack("!B61f", 61, *values)
    )
    packet = ll.decode_packet(data)
    assert (packet.device_id, packet.subject, packet.frame_number) == (device, "Anna", 2_000_000)
    assert 0.4 < packet.subframe < 0.5 and (packet.fps_numerator, packet.fps_denominator) == (60, 1)
    # index 15 of the packet is JawLeft in Unreal's order -> ARKit jawLeft
    assert packet.blendshapes[ARKIT_NAMES.index("jawLeft")] == pytest.approx(0.15)
    assert packet.blendshapes[ARKIT_NAMES.index("jawRight")] == pytest.approx(0.16)
    assert packet.blendshapes[ARKIT_NAMES.index("tongueOut")] == pytest.approx(0.51)
    np.testing.assert_allclose(packet.rotations, values[52:], rtol=1e-6)
