"""Real data for the animation-export tests: a captured take and a speech-driven mesh animation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facelib.io.face_rig import BlendshapeTake, FaceRig, RigMesh
from facelib.io.mesh import read_mesh
from facelib.io.standin_face import standin_face
from facelib.io.video import VideoReader
from facelib.processing.arkit import ARKIT_NAMES, from_mediapipe


def real_take(reference_dir: Path, media_dir: Path) -> BlendshapeTake:
    """Google MediaPipe's blendshapes for every frame of talking_face_01.mp4, at the video's frame times."""
    with np.load(reference_dir / "mediapipe_face_landmarker_ref.npz") as ref:
        weights = from_mediapipe(ref["talking_face_01_mp4_blendshapes"])
    with VideoReader(media_dir / "video" / "talking_face_01.mp4") as video:
        fps = video.fps
    times = np.arange(len(weights)) / fps
    return BlendshapeTake(times=times, weights=weights, fps=fps)


def flame_animation(reference_dir: Path, media_dir: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Upstream FaceFormer's (vocaset, tiny) vertices (T, 5023, 3), FLAME's triangles, 30 fps."""
    with np.load(reference_dir / "faceformer_vocaset_tiny_seed1_ref.npz") as ref:
        vertices = ref["vertices"].astype(np.float32)
    faces = read_mesh(media_dir / "meshes" / "FLAME_sample.ply").faces
    return vertices, faces, 30.0


#: A rig's own names for some ARKit shapes (matched loosely), and one shape with no ARKit name.
RIG_NAMES = {
    "EyeBlink_L": "eyeBlinkLeft",
    "EyeBlink_R": "eyeBlinkRight",
    "JawOpen": "jawOpen",
    "mouthSmile_L": "mouthSmileLeft",
    "MouthSmileRight": "mouthSmileRight",
    "browInnerUp": "browInnerUp",
    "smirk_custom": "mouthDimpleLeft",  # the shape it moves; the name matches nothing
}


def renamed_rig() -> FaceRig:
    """The stand-in face as a user's rig would name it: 7 shapes (see :data:`RIG_NAMES`)."""
    base = standin_face().meshes[0]
    rows = [ARKIT_NAMES.index(a) for a in RIG_NAMES.values()]
    mesh = RigMesh("Head", base.points, base.face_counts, base.face_indices, tuple(RIG_NAMES), base.shape_offsets[rows])
    return FaceRig((mesh,), "renamed")
