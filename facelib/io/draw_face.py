"""Drawing expression-capture results: landmarks / mesh, head-pose axes, a blendshape bar chart.

Every function takes and returns RGB uint8 (H, W, 3) images and never changes its input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from facelib.processing.arkit import ARKIT_NAMES
from facelib.processing.face_geometry import NEAR, VERTICAL_FOV_DEGREES
from facelib.results import BlendshapeFrame, FaceBlendshapes

Colour = tuple[int, int, int]


def draw_landmarks(
    image: np.ndarray,
    landmarks: np.ndarray,
    colour: Colour = (0, 255, 0),
    radius: int = 1,
    triangles: np.ndarray | None = None,
    mesh_colour: Colour = (200, 200, 200),
) -> np.ndarray:
    """Points (and, with ``triangles`` (T, 3), mesh edges) of (N, >=2) pixel landmarks."""
    import cv2

    out = image.copy()
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    if triangles is not None:
        tri = np.asarray(triangles, dtype=np.int64)
        tri = tri[(tri < len(pts)).all(axis=1)]
        polys = [np.round(pts[t]).astype(np.int32).reshape(-1, 1, 2) for t in tri]
        cv2.polylines(out, polys, isClosed=True, color=mesh_colour, thickness=1, lineType=cv2.LINE_AA)
    for x, y in np.round(pts).astype(np.int64):
        cv2.circle(out, (int(x), int(y)), radius, colour, -1, lineType=cv2.LINE_AA)
    return out


def project_camera_points(
    points: np.ndarray, width: int, height: int, vertical_fov_degrees: float = VERTICAL_FOV_DEGREES, near: float = NEAR
) -> np.ndarray:
    """(N, 3) camera-space points (MediaPipe's: +X right, +Y up, camera looking along -Z) -> (N, 2) pixels."""
    pts = np.asarray(points, dtype=np.float64)
    h_n = 2.0 * near * math.tan(0.5 * math.radians(vertical_fov_degrees))
    w_n = h_n * width / height
    depth = np.maximum(-pts[:, 2], 1e-6)
    x = pts[:, 0] * near / depth
    y = pts[:, 1] * near / depth
    return np.stack([(x / w_n + 0.5) * width, (0.5 - y / h_n) * height], axis=1)


def draw_pose_axes(image: np.ndarray, transform: np.ndarray, length_cm: float = 8.0, thickness: int = 2) -> np.ndarray:
    """The face's x (red, towards the subject's left), y (green, up), z (blue, out of the face) axes.

    ``transform`` is the (4, 4) facial transformation matrix (canonical cm -> camera space).
    """
    import cv2

    out = image.copy()
    height, width = image.shape[:2]
    axes = np.array([[0, 0, 0, 1], [length_cm, 0, 0, 1], [0, length_cm, 0, 1], [0, 0, length_cm, 1]], dtype=np.float64)
    cam = (np.asarray(transform, dtype=np.float64) @ axes.T).T[:, :3]
    px = np.round(project_camera_points(cam, width, height)).astype(np.int64)
    origin = (int(px[0, 0]), int(px[0, 1]))
    for end, colour in zip(px[1:], ((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        cv2.arrowedLine(out, origin, (int(end[0]), int(end[1])), colour, thickness, cv2.LINE_AA, tipLength=0.15)
    return out


def blendshape_panel(
    values: np.ndarray,
    names: Sequence[str] = ARKIT_NAMES,
    height: int = 480,
    width: int = 260,
    top_k: int | None = None,
) -> np.ndarray:
    """A bar chart of blendshape weights in [0, 1] as an RGB uint8 (height, width, 3) image.

    ``top_k`` keeps only the largest ``top_k`` weights (sorted); otherwise all are drawn in order.
    """
    import cv2

    vals = np.clip(np.asarray(values, dtype=np.float64).reshape(-1), 0.0, 1.0)
    order = np.argsort(-vals, kind="stable")[:top_k] if top_k else np.arange(vals.size)
    panel = np.full((height, width, 3), 32, dtype=np.uint8)
    rows = max(len(order), 1)
    row_h = height / rows
    label_w = int(width * 0.62)
    font_scale = max(min(row_h / 26.0, 0.5), 0.25)
    for r, i in enumerate(order):
        y0 = int(r * row_h)
        y1 = max(int((r + 1) * row_h) - 1, y0 + 1)
        bar = int(vals[i] * (width - label_w - 4))
        cv2.rectangle(panel, (label_w, y0 + 1), (label_w + bar, y1), (80, 200, 255), -1)
        cv2.putText(
            panel, str(names[i]), (2, y1 - 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (230, 230, 230), 1, cv2.LINE_AA
        )
    return panel


def draw_face(
    image: np.ndarray, face: FaceBlendshapes, triangles: np.ndarray | None = None, box_colour: Colour = (255, 255, 0)
) -> np.ndarray:
    """Box, landmarks (mesh when ``triangles`` is given), pose axes and head pose text of one face."""
    import cv2

    out = image.copy()
    x1, y1, x2, y2 = (round(float(v)) for v in face.box)
    cv2.rectangle(out, (x1, y1), (x2, y2), box_colour, 1, cv2.LINE_AA)
    if face.landmarks is not None:
        out = draw_landmarks(out, face.landmarks, triangles=triangles)
    if face.transform is not None:
        out = draw_pose_axes(out, face.transform)
    if face.head_pose is not None:
        yaw, pitch, roll = (float(v) for v in face.head_pose)
        text = f"yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}"
        cv2.putText(out, text, (x1, max(y1 - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, box_colour, 1, cv2.LINE_AA)
    return out


def draw_frame(
    image: np.ndarray,
    frame: BlendshapeFrame,
    triangles: np.ndarray | None = None,
    panel: bool = True,
    panel_width: int = 260,
    top_k: int | None = None,
) -> np.ndarray:
    """Every face of ``frame`` drawn on ``image``; with ``panel``, the first face's blendshape
    chart is appended on the right (the output is then ``panel_width`` pixels wider)."""
    out = image.copy()
    for face in frame.faces:
        out = draw_face(out, face, triangles=triangles)
    if not panel:
        return out
    values = frame.faces[0].blendshapes if frame.faces else np.zeros(len(ARKIT_NAMES))
    chart = blendshape_panel(values, height=out.shape[0], width=panel_width, top_k=top_k)
    return np.concatenate([out, chart], axis=1)
