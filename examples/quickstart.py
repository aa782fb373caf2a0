"""facelib in a few lines: head pose and blendshapes of the faces in a photo, then a video.

Run from anywhere: ``python examples/quickstart.py``.  Models come from facelib's model hub; this
script points the hub at the shared mirror (``$FACELIB_SHARED/assets``, default ``../shared``)
when ``FACELIB_MIRROR`` is not set, so it runs offline.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import facelib

SHARED = Path(os.environ.get("FACELIB_SHARED", Path(__file__).resolve().parents[2] / "shared"))
os.environ.setdefault("FACELIB_MIRROR", str(SHARED / "assets"))
MEDIA = SHARED / "assets" / "media"
OUT = Path(tempfile.mkdtemp(prefix="facelib-quickstart-"))

print("backends:", ", ".join(f"{b.name} ({'yes' if b.available else 'no'})" for b in facelib.list_backends()))

# Head pose: every face, yaw/pitch/roll in degrees.
with facelib.HeadPose.from_pretrained("fsanet", progress=False) as pose:
    for face in pose.predict(MEDIA / "images" / "two_people.jpg"):
        print(f"head pose: box {face.box.round(1)} yaw {face.yaw:+.1f} pitch {face.pitch:+.1f} roll {face.roll:+.1f}")

# Expression capture: 52 ARKit blendshapes per face, here the strongest five.
with facelib.BlendshapeCapture.from_pretrained(progress=False, num_faces=2) as capture:
    frame = capture.process(MEDIA / "images" / "obama.jpg")
    for face in frame.faces:
        top = sorted(zip(facelib.ARKIT_NAMES, face.blendshapes), key=lambda kv: -kv[1])[:5]
        print("blendshapes:", ", ".join(f"{name} {value:.2f}" for name, value in top))

# A video, streamed frame by frame into a Live Link Face CSV.
with facelib.BlendshapeCapture.from_pretrained(progress=False, mode="video") as capture:
    frames = capture.process_video(MEDIA / "video" / "talking_face_01.mp4", max_frames=30)
    csv = facelib.write_livelink_csv(frames, OUT / "take.csv")
print("wrote", csv, f"({len(csv.read_text().splitlines()) - 1} frames)")
