"""Live Link Face interchange: the app's CSV takes and its UDP stream (Unreal Live Link).

CSV (what Epic's Live Link Face app records, what Unreal / Blender / Maya importers read)::

    Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,
    LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll
    00:00:00:00.000,61,0.0123,...

* Columns: the 52 ARKit shapes in PascalCase in the app's CSV order
  (:data:`facelib.processing.arkit.ARKIT_NAMES`: ``JawForward, JawRight, JawLeft, JawOpen``,
  ``MouthRight, MouthLeft`` — note this differs from the UDP order below), then 9 rotations.
  ``BlendShapeCount`` is 61.  Some exports hold 51 shapes (no ``TongueOut``) and some spell the
  column ``BlendshapeCount``; the reader matches columns by name, case-insensitively.
* ``Timecode`` is ``HH:MM:SS:FF.fff``: FF is the frame within the second at the take's frame
  rate (60 by default) and ``.fff`` the sub-frame in thousandths of a frame (Unreal's
  ``FQualifiedFrameTime``).
* Rotations are Unreal ``FRotator`` degrees divided by 180 (range -1..1), as Unreal's ARKit face
  support fills them; facelib writes ``head_pose`` yaw, pitch, roll (degrees, facelib's sign
  convention of :class:`~facelib.results.FaceBlendshapes`) divided by 180, and
  0 for the eye rotations (no gaze angles are estimated).

UDP packet (packet version 6, as sent by the app and decoded by Unreal's
``AppleARKitLiveLinkSource``; all multi-byte numbers big-endian, "network byte order")::

    uint8    version (6)
    int32    length, then that many UTF-8 bytes: device id
    int32    length, then that many UTF-8 bytes: subject name
    int32    frame number     float32 sub-frame      (FFrameTime)
    int32    rate numerator   int32 rate denominator (FFrameRate)
    uint8    value count (61)
    61 × float32: Unreal's EARFaceBlendShape order (:data:`UDP_NAMES`)

(PyLiveLinkFace writes the version as a little-endian uint32 followed by ``"$" + uuid``: the same
bytes, since ``06 00 00 00 24`` is uint8 6 then the big-endian length 36 = ``"$"``.)
"""

from __future__ import annotations

import csv
import datetime
import math
import os
import socket
import struct
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import attrs
import numpy as np

from facelib.errors import InputError, MediaReadError, NoFaceError
from facelib.io.atomic import StreamingWriter
from facelib.processing.arkit import ARKIT_NAMES, arkit_index
from facelib.results import BlendshapeFrame, FaceBlendshapes

#: The 9 rotation columns that follow the 52 shapes (CSV and UDP).
ROTATION_NAMES: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll",
    "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip


def _pascal(name: str) -> str:
    return name[0].upper() + name[1:]


#: The 52 shape columns of a Live Link Face CSV, in the app's order (PascalCase ARKit names).
CSV_SHAPE_NAMES: tuple[str, ...] = tuple(_pascal(n) for n in ARKIT_NAMES)
#: The exact header row facelib writes (63 columns).
CSV_HEADER: tuple[str, ...] = ("Timecode", "BlendShapeCount", *CSV_SHAPE_NAMES, *ROTATION_NAMES)
#: Value of the ``BlendShapeCount`` column.
BLENDSHAPE_COUNT = 61

#: Unreal's ``EARFaceBlendShape`` order, used by the UDP packet (61 values).  It differs from
#: the CSV order in two places: ``JawLeft, JawRight`` and ``MouthLeft, MouthRight``.
UDP_NAMES: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft",
    "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight",
    "JawForward", "JawLeft", "JawRight", "JawOpen",
    "MouthClose", "MouthFunnel", "MouthPucker", "MouthLeft", "MouthRight",
    "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
    "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight",
    "MouthUpperUpLeft", "MouthUpperUpRight",
    "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight",
    "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight",
    "TongueOut",
    *ROTATION_NAMES,
)  # fmt: skip
#: Position in the ARKit-52 order of each of the first 52 UDP values.
_UDP_TO_ARKIT = np.asarray([arkit_index(n) for n in UDP_NAMES[:52]], dtype=np.int64)

PACKET_VERSION = 6
DEFAULT_PORT = 11111
_HEAD = struct.Struct(">ifii")  # frame number, sub-frame, rate numerator, denominator


# --- timecodes -----------------------------------------------------------------------------


def format_timecode(seconds: float, fps: float = 60.0) -> str:
    """``HH:MM:SS:FF.fff`` of a time in seconds at ``fps`` (FF frame in the second, fff sub-frame)."""
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"timecode needs a finite time >= 0 s, got {seconds}")
    whole = math.floor(seconds)
    milli_frames = round((seconds - whole) * fps * 1000)
    if milli_frames >= math.ceil(fps) * 1000:  # rounding carried into the next second
        whole, milli_frames = whole + 1, 0
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    frames, sub = divmod(milli_frames, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}:{frames:02d}.{sub:03d}"


def parse_timecode(text: str, fps: float = 60.0) -> float:
    """Seconds of a ``HH:MM:SS:FF[.fff]`` timecode at ``fps`` (inverse of :func:`format_timecode`)."""
    parts = text.strip().split(":")
    try:
        if len(parts) != 4:
            raise ValueError
        hours, minutes, secs = int(parts[0]), int(parts[1]), int(parts[2])
        frames = float(parts[3])
    except ValueError:
        raise InputError(f"bad Live Link timecode {text!r}; expected HH:MM:SS:FF.fff") from None
    return hours * 3600 + minutes * 60 + secs + frames / fps


# --- CSV -----------------------------------------------------------------------------------


def _frame_time(frame: BlendshapeFrame, fps: float) -> float:
    if frame.timestamp_ms > 0 or frame.index == 0:
        return float(frame.timestamp_ms) / 1000.0
    return frame.index / fps


def face_row(face: FaceBlendshapes | None) -> np.ndarray:
    """(61,) float32 values of one face in CSV order: 52 weights, then 9 rotations (degrees / 180)."""
    row = np.zeros(61, dtype=np.float32)
    if face is None:
        return row
    weights = np.asarray(face.blendshapes, dtype=np.float32).reshape(-1)
    if weights.shape != (52,):
        raise InputError(f"a face needs 52 ARKit weights, got {weights.shape}")
    row[:52] = weights
    if face.head_pose is not None:
        row[52:55] = np.asarray(face.head_pose, dtype=np.float32).reshape(3) / 180.0
    return row


class LiveLinkCSVWriter(StreamingWriter):
    """Write a Live Link Face CSV one frame at a time (bounded memory on long videos).

    Parameters
    ----------
    path:
        Output ``.csv`` file (parent directories are created).
    fps:
        Frame rate of the timecodes (the app's default is 60).
    face:
        Which face of each frame to write (faces are ordered as the engine returns them).
    missing:
        What to write for a frame without that face: ``"hold"`` (default) repeats the last row,
        and frames before the first face get the first face's row (so a take never starts with
        rows of zeros, which would read as a neutral face); ``"zero"`` writes zeros; ``"skip"``
        writes no row.

    The CSV is written aside and renamed onto ``path`` by :meth:`close` (see
    :mod:`facelib.io.atomic`); leaving the ``with`` block by an exception removes it.  With
    ``"hold"``, a take in which no frame has the face raises :class:`NoFaceError` on close and
    writes nothing: there is no row that would not be mistaken for a real expression.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 60.0, face: int = 0, missing: str = "hold") -> None:
        if missing not in ("hold", "zero", "skip"):
            raise InputError(f"missing must be 'hold', 'zero' or 'skip', got {missing!r}")
        if not fps > 0:
            raise InputError(f"fps must be positive, got {fps}")
        if face < 0:
            raise InputError(f"face index must be >= 0, got {face}")
        from facelib.io.atomic import AtomicOutput

        self.path = Path(path)
        self.fps, self.face, self.missing = float(fps), int(face), missing
        self._out = AtomicOutput(self.path, "CSV")  # renamed onto path by close()
        self._fh: IO[str] | None = open(self._out.partial, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv = csv.writer(self._fh, lineterminator="\n")
        self._csv.writerow(CSV_HEADER)
        self._last: np.ndarray | None = None
        self._waiting: list[float] = []  # times of frames before the first face ("hold")
        self.rows = 0

    def write_row(self, seconds: float, values: np.ndarray) -> None:
        """Write one row: time in seconds and (61,) values in CSV order (52 weights + 9 rotations)."""
        if self._fh is None:
            raise InputError(f"{self.path} is closed")
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        if values.shape != (61,):
            raise InputError(f"a Live Link row needs 61 values, got {values.shape[0]}")
        cells = [format_timecode(seconds, self.fps), str(BLENDSHAPE_COUNT)]
        self._csv.writerow(cells + [f"{v:.8f}" for v in values.tolist()])  # fixed point, as the app
        self.rows += 1

    def write(self, frame: BlendshapeFrame) -> None:
        """Write one :class:`BlendshapeFrame` (its ``face``-th face)."""
        face = frame.faces[self.face] if len(frame.faces) > self.face else None
        seconds = _frame_time(frame, self.fps)
        if face is None:
            if self.missing == "skip":
                return
            if self.missing == "zero":
                self.write_row(seconds, np.zeros(61, np.float32))
            elif self._last is None:
                self._waiting.append(seconds)  # written with the first face's row
            else:
                self.write_row(seconds, self._last)
            return
        values = face_row(face)
        for earlier in self._waiting:
            self.write_row(earlier, values)
        self._waiting.clear()
        self._last = values
        self.write_row(seconds, values)

    def close(self) -> None:
        """Finish the take and move it onto :attr:`path`.

        Raises :class:`NoFaceError` (and writes nothing) when ``missing="hold"`` and frames came
        but none had the face.
        """
        if self._fh is None:
            return
        self._fh.close()
        self._fh = None
        if self._waiting:
            count = len(self._waiting)
            self._waiting.clear()
            self._out.discard()
            raise NoFaceError(
                f"no face in any of the {count} frames, so {self.path} was not written "
                "(rows of zeros would read as a neutral face)"
            )
        self._out.commit()

    def abort(self) -> None:
        """Stop without writing: the partial take is deleted, :attr:`path` is left as it was."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._out.discard()


def write_livelink_csv(
    frames: Iterable[BlendshapeFrame],
    path: str | os.PathLike[str],
    fps: float = 60.0,
    face: int = 0,
    missing: str = "hold",
) -> Path:
    """Write capture results as a Live Link Face CSV (see the module docstring); returns the path.

    ``frames`` may be a generator (rows are written as they come).  Frame times come from
    ``timestamp_ms`` (video) or ``index / fps`` (image sequences with zero timestamps).
    """
    with LiveLinkCSVWriter(path, fps=fps, face=face, missing=missing) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


@attrs.frozen
class LiveLinkTake:
    """A Live Link Face CSV read back.

    Attributes
    ----------
    timecodes:
        The ``Timecode`` column as written.
    times:
        (T,) float64 seconds from the timecodes (at ``fps``).
    blendshapes:
        (T, 52) float32 in :data:`~facelib.processing.arkit.ARKIT_NAMES` order; shapes the file
        lacks are 0 (see ``present``).
    rotations:
        (T, 9) float32 in :data:`ROTATION_NAMES` order (degrees / 180), 0 when absent.
    present:
        (52,) bool: which ARKit shapes had a column.
    extra:
        Columns that are neither shapes nor rotations: name -> (T,) float32 (e.g. a 51-shape
        export's custom curves).
    """

    timecodes: tuple[str, ...]
    times: np.ndarray
    blendshapes: np.ndarray
    rotations: np.ndarray
    present: np.ndarray
    extra: dict[str, np.ndarray]

    def to_frames(self) -> list[BlendshapeFrame]:
        """One single-face :class:`BlendshapeFrame` per row (box zeros, head pose in degrees)."""
        out = []
        for i in range(len(self.times)):
            face = FaceBlendshapes(
                box=np.zeros(4, np.float32),
                score=1.0,
                blendshapes=self.blendshapes[i].copy(),
                head_pose=(self.rotations[i, :3] * 180.0).astype(np.float32),
            )
            out.append(BlendshapeFrame(index=i, timestamp_ms=float(self.times[i] * 1000.0), faces=(face,)))
        return out


def read_livelink_csv(path: str | os.PathLike[str], fps: float = 60.0) -> LiveLinkTake:
    """Read a Live Link Face CSV (61- or 51-shape exports), matching columns by name."""
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f"Live Link CSV not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MediaReadError(f"{path} is not a UTF-8 Live Link Face CSV: {exc}") from exc
    if not rows:
        raise MediaReadError(f"{path} is empty; expected a Live Link Face CSV header")
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    if "timecode" not in lower:
        raise MediaReadError(f"{path} has no Timecode column; it is not a Live Link Face CSV")
    tc_col = lower.index("timecode")
    rot_lower = [r.lower() for r in ROTATION_NAMES]
    shape_cols: dict[int, int] = {}
    rot_cols: dict[int, int] = {}
    extra_cols: dict[str, int] = {}
    for col, name in enumerate(header):
        key = name.lower()
        if col == tc_col or key == "blendshapecount":
            continue
        if key in rot_lower:
            rot_cols[rot_lower.index(key)] = col
            continue
        idx = arkit_index(name)
        if idx is not None and idx not in shape_cols:
            shape_cols[idx] = col
        else:
            extra_cols[name] = col
    if not shape_cols:
        raise MediaReadError(f"{path}: no ARKit blendshape columns found in the header")
    body = rows[1:]
    t = len(body)
    shapes = np.zeros((t, 52), np.float32)
    rotations = np.zeros((t, 9), np.float32)
    extra = {name: np.zeros(t, np.float32) for name in extra_cols}
    timecodes = []
    for i, row in enumerate(body):
        if len(row) < len(header):
            raise MediaReadError(f"{path}: row {i + 2} has {len(row)} cells, the header has {len(header)}")
        timecodes.append(row[tc_col].strip())
        try:
            for idx, col in shape_cols.items():
                shapes[i, idx] = float(row[col])
            for idx, col in rot_cols.items():
                rotations[i, idx] = float(row[col])
            for name, col in extra_cols.items():
                extra[name][i] = float(row[col]) if row[col].strip() else np.nan
        except ValueError as exc:
            raise MediaReadError(f"{path}: row {i + 2} has a non-numeric value ({exc})") from None
    times = np.asarray([parse_timecode(tc, fps) for tc in timecodes], dtype=np.float64)
    present = np.zeros(52, bool)
    present[list(shape_cols)] = True
    return LiveLinkTake(tuple(timecodes), times, shapes, rotations, present, extra)


# --- UDP -----------------------------------------------------------------------------------


@attrs.frozen
class LiveLinkPacket:
    """One decoded Live Link Face UDP packet.

    ``blendshapes`` (52,) float32 in ARKit-52 order (reordered from the packet's Unreal order);
    ``rotations`` (9,) float32 in :data:`ROTATION_NAMES` order (degrees / 180).
    """

    version: int
    device_id: str
    subject: str
    frame_number: int
    subframe: float
    fps_numerator: int
    fps_denominator: int
    blendshapes: np.ndarray
    rotations: np.ndarray

    @property
    def seconds(self) -> float:
        """Frame time in seconds (frame number + sub-frame at the packet's rate)."""
        rate = self.fps_numerator / max(self.fps_denominator, 1)
        return (self.frame_number + self.subframe) / rate


def _pack_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">i", len(data)) + data


def encode_packet(
    blendshapes: np.ndarray,
    rotations: np.ndarray | None = None,
    *,
    subject: str = "facelib",
    device_id: str = "",
    frame_number: int = 0,
    subframe: float = 0.0,
    fps: int = 60,
    fps_denominator: int = 1,
) -> bytes:
    """A Live Link Face UDP packet (version 6) for one face.

    Parameters
    ----------
    blendshapes:
        (52,) weights in ARKit-52 order (:data:`~facelib.processing.arkit.ARKIT_NAMES`).
    rotations:
        (9,) head / eye rotations in :data:`ROTATION_NAMES` order, degrees / 180 (None: zeros).
    """
    weights = np.asarray(blendshapes, dtype=np.float32).reshape(-1)
    if weights.shape != (52,):
        raise InputError(f"a Live Link packet needs 52 ARKit weights, got {weights.shape[0]}")
    rot = np.zeros(9, np.float32) if rotations is None else np.asarray(rotations, np.float32).reshape(-1)
    if rot.shape != (9,):
        raise InputError(f"a Live Link packet needs 9 rotations, got {rot.shape[0]}")
    values = np.concatenate([weights[_UDP_TO_ARKIT], rot]).astype(">f4")
    return b"".join(
        [
            struct.pack(">B", PACKET_VERSION),
            _pack_string(device_id),
            _pack_string(subject),
            _HEAD.pack(int(frame_number), float(subframe), int(fps), int(fps_denominator)),
            struct.pack(">B", len(UDP_NAMES)),
            values.tobytes(),
        ]
    )


def decode_packet(data: bytes) -> LiveLinkPacket:
    """Decode a Live Link Face UDP packet (version 6); malformed data raises :class:`InputError`."""
    view = memoryview(data)
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(view):
            raise InputError(f"truncated Live Link packet ({len(view)} bytes)")
        chunk = bytes(view[pos : pos + n])
        pos += n
        return chunk

    def string() -> str:
        (length,) = struct.unpack(">i", take(4))
        if length > 1024:
            raise InputError(f"Live Link packet string length {length} is implausible")
        try:
            return take(length).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"Live Link packet has a non-UTF-8 string: {exc}") from None

    (version,) = struct.unpack(">B", take(1))
    if version != PACKET_VERSION:
        raise InputError(f"Live Link packet version {version}; this reader decodes version {PACKET_VERSION}")
    device_id = string()
    subject = string()
    frame_number, subframe, num, den = _HEAD.unpack(take(_HEAD.size))
    (count,) = struct.unpack(">B", take(1))
    if count != len(UDP_NAMES):
        raise InputError(f"Live Link packet has {count} values, expected {len(UDP_NAMES)}")
    values = np.frombuffer(take(4 * count), dtype=">f4").astype(np.float32)
    if pos != len(view):
        raise InputError(f"Live Link packet has {len(view) - pos} unexpected trailing bytes")
    shapes = np.zeros(52, np.float32)
    shapes[_UDP_TO_ARKIT] = values[:52]
    return LiveLinkPacket(version, device_id, subject, frame_number, subframe, num, den, shapes, values[52:].copy())


def _time_of_day() -> float:
    now = datetime.datetime.now()
    return now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6


class LiveLinkSender:
    """Stream faces to Unreal (or any Live Link Face receiver) over UDP.

    Parameters
    ----------
    host, port:
        Receiver address (Unreal's Live Link Face source listens on 11111 by default).
    subject:
        Live Link subject name shown in Unreal.
    device_id:
        Device identifier (default: a random UUID, 36 characters, as the app sends).
    fps:
        Frame rate the frame numbers count at.

    Example::

        with LiveLinkSender("192.168.1.20", 11111, subject="face") as sender:
            for frame in capture.process_video("clip.mp4"):
                sender.send_frame(frame)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        subject: str = "facelib",
        device_id: str | None = None,
        fps: int = 60,
    ) -> None:
        if not 0 < int(port) < 65536:
            raise InputError(f"port must be in 1..65535, got {port}")
        if int(fps) < 1:
            raise InputError(f"fps must be >= 1, got {fps}")
        try:
            infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise InputError(f"cannot resolve Live Link host {host!r}: {exc}") from None
        self.address: tuple[str, int] = infos[0][4][:2]  # type: ignore[assignment]
        self.subject = subject
        self.device_id = device_id if device_id is not None else str(uuid.uuid4())
        self.fps = int(fps)
        self._sock: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sent = 0

    def send(self, blendshapes: np.ndarray, rotations: np.ndarray | None = None, seconds: float | None = None) -> int:
        """Send one packet; ``seconds`` is the frame time (default: time of day, as the app).

        Returns the number of bytes sent.
        """
        if self._sock is None:
            raise InputError("this LiveLinkSender is closed")
        t = _time_of_day() if seconds is None else float(seconds)
        frames = t * self.fps
        whole = math.floor(frames)
        packet = encode_packet(
            blendshapes,
            rotations,
            subject=self.subject,
            device_id=self.device_id,
            frame_number=int(whole),
            subframe=float(frames - whole),
            fps=self.fps,
        )
        sent = self._sock.sendto(packet, self.address)
        self.sent += 1
        return sent

    def send_face(self, face: FaceBlendshapes, seconds: float | None = None) -> int:
        """Send one face (its 52 weights and head pose)."""
        row = face_row(face)
        return self.send(row[:52], row[52:], seconds)

    def send_frame(self, frame: BlendshapeFrame, face: int = 0, use_timestamp: bool = False) -> int:
        """Send the ``face``-th face of a frame; frames without it send nothing (returns 0)."""
        if len(frame.faces) <= face:
            return 0
        seconds = frame.timestamp_ms / 1000.0 if use_timestamp else None
        return self.send_face(frame.faces[face], seconds)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> LiveLinkSender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LiveLinkReceiver:
    """Receive and decode Live Link Face packets (for tests and debugging; binds UDP ``host:port``).

    ``port=0`` picks a free port (read it from :attr:`port`).
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._sock: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, int(port)))
        except OSError as exc:
            self._sock.close()
            raise InputError(f"cannot listen on {host}:{port}: {exc}") from None
        self.host, self.port = self._sock.getsockname()[:2]

    def receive(self, timeout: float = 1.0) -> LiveLinkPacket:
        """The next packet (waits up to ``timeout`` seconds; :class:`TimeoutError` otherwise)."""
        if self._sock is None:
            raise InputError("this LiveLinkReceiver is closed")
        self._sock.settimeout(timeout)
        data, _ = self._sock.recvfrom(4096)
        return decode_packet(data)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> LiveLinkReceiver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def rows_from_arrays(blendshapes: np.ndarray, names: Sequence[str] = ARKIT_NAMES) -> np.ndarray:
    """(T, K) weights in the order ``names`` -> (T, 61) CSV rows (rotations 0)."""
    from facelib.processing.arkit import to_arkit

    out = np.zeros((len(blendshapes), 61), np.float32)
    out[:, :52] = to_arkit(np.asarray(blendshapes, np.float32).reshape(len(blendshapes), -1), names)
    return out
