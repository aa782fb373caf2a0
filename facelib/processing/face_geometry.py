"""Facial transformation matrix (head pose) from face-mesh landmarks, MediaPipe's geometry pipeline.

The canonical face model (468 vertices in centimetres; +x towards the subject's left, which is
the image right for a face looking at the camera, +y up, +z out of the face towards the viewer)
comes with 33 weighted "Procrustes" landmarks.  From the screen landmarks of a face and a
virtual perspective camera (vertical field of view 63 degrees, near plane 1 cm) the pipeline
estimates metric 3D landmarks, then solves a weighted orthogonal Procrustes problem
canonical -> metric.  The resulting 4x4 matrix maps canonical-model coordinates (cm) into a
right-handed camera space: camera at the origin looking along -Z, +X to the image right, +Y up.

This module also reads the canonical model from MediaPipe's
``geometry_pipeline_metadata_landmarks.binarypb`` with a minimal protobuf wire-format reader.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import attrs
import numpy as np

from facelib.errors import ModelFileError

#: Environment of the default Face Landmarker: vertical field of view (degrees), near plane (cm).
VERTICAL_FOV_DEGREES = 63.0
NEAR = 1.0
#: Landmarks used by the geometry (the iris points 468..477 are dropped).
NUM_MESH_LANDMARKS = 468


# --- minimal protobuf wire-format reader -----------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ModelFileError("truncated protobuf varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ModelFileError("malformed protobuf varint")


def read_fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Decode one protobuf message into ``(field_number, wire_type, value)`` triples.

    ``value`` is an int for varints, 4/8 raw bytes for fixed32/fixed64 and bytes for
    length-delimited fields (sub-messages, strings, packed arrays).
    """
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ModelFileError(f"unsupported protobuf wire type {wire} (field {field})")
        if pos > len(data):
            raise ModelFileError("truncated protobuf message")
        out.append((field, wire, value))
    return out


def _floats(fields: list[tuple[int, int, Any]], number: int) -> list[float]:
    values: list[float] = []
    for field, wire, value in fields:
        if field != number:
            continue
        if wire == 5:
            values.append(struct.unpack("<f", value)[0])
        elif wire == 2:  # packed
            values.extend(struct.unpack(f"<{len(value) // 4}f", value))
    return values


def _uints(fields: list[tuple[int, int, Any]], number: int) -> list[int]:
    values: list[int] = []
    for field, wire, value in fields:
        if field != number:
            continue
        if wire == 0:
            values.append(value)
        elif wire == 2:  # packed varints
            pos = 0
            while pos < len(value):
                v, pos = _varint(value, pos)
                values.append(v)
    return values


@attrs.frozen
class CanonicalFace:
    """MediaPipe's canonical face model.

    Attributes
    ----------
    vertices:
        (468, 3) float64 positions in centimetres.
    uv:
        (468, 2) float64 texture coordinates.
    triangles:
        (T, 3) int64 vertex indices (T = 898).
    weights:
        (468,) float64 Procrustes weights (33 non-zero).
    """

    vertices: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_binarypb(cls, data: bytes) -> CanonicalFace:
        """Parse ``geometry_pipeline_metadata_landmarks.binarypb`` (GeometryPipelineMetadata)."""
        top = read_fields(data)
        meshes = [v for f, w, v in top if f == 1 and w == 2]
        if not meshes:
            raise ModelFileError("geometry metadata has no canonical_mesh")
        mesh = read_fields(meshes[0])
        vertex_type = next((v for f, w, v in mesh if f == 1 and w == 0), 0)
        if vertex_type != 0:
            raise ModelFileError(f"canonical mesh vertex type {vertex_type} is not VERTEX_PT (0)")
        buffer = np.asarray(_floats(mesh, 3), dtype=np.float64)
        if buffer.size == 0 or buffer.size % 5:
            raise ModelFileError(f"canonical mesh vertex buffer has {buffer.size} values, not a multiple of 5")
        buffer = buffer.reshape(-1, 5)
        triangles = np.asarray(_uints(mesh, 4), dtype=np.int64).reshape(-1, 3)
        weights = np.zeros(buffer.shape[0], dtype=np.float64)
        for f, w, v in top:
            if f == 2 and w == 2:
                basis = read_fields(v)
                ids = _uints(basis, 1)
                weight = _floats(basis, 2)
                landmark = ids[0] if ids else 0
                if landmark >= weights.size:
                    raise ModelFileError(f"Procrustes landmark {landmark} outside the mesh")
                weights[landmark] = weight[0] if weight else 0.0
        return cls(buffer[:, :3].copy(), buffer[:, 3:].copy(), triangles, weights)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what model packages store)."""
        ids = np.nonzero(self.weights)[0]
        return {
            "vertices": np.round(self.vertices, 7).tolist(),
            "uv": np.round(self.uv, 7).tolist(),
            "triangles": self.triangles.tolist(),
            "procrustes_landmarks": ids.tolist(),
            "procrustes_weights": self.weights[ids].tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CanonicalFace:
        try:
            vertices = np.asarray(data["vertices"], dtype=np.float64).reshape(-1, 3)
            weights = np.zeros(vertices.shape[0])
            weights[np.asarray(data["procrustes_landmarks"], dtype=np.int64)] = data["procrustes_weights"]
            return cls(
                vertices,
                np.asarray(data["uv"], dtype=np.float64).reshape(-1, 2),
                np.asarray(data["triangles"], dtype=np.int64).reshape(-1, 3),
                weights,
            )
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise ModelFileError(f"canonical face geometry is malformed: {exc}") from exc


# --- Procrustes and the metric pipeline ------------------------------------------------------


def _det3(m: np.ndarray) -> float:
    """Determinant of a 3x3 matrix (a fraction of ``np.linalg.det``'s per-call cost; here it only
    gives the sign of an orthogonal matrix's determinant, +-1)."""
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    return float(a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g))


def weighted_procrustes(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """4x4 similarity transform (scale * rotation, translation) best mapping ``source`` onto ``target``.

    Parameters
    ----------
    source, target:
        (3, N) point sets (columns are points).
    weights:
        (N,) non-negative weights, not all zero.
    """
    sw = np.sqrt(weights)
    a_w = source * sw
    b_w = target * sw
    total = weights.sum()
    centroid = (a_w * sw).sum(axis=1, keepdims=True) / total
    centred = a_w - centroid * sw
    u, _, vt = np.linalg.svd(b_w @ centred.T)
    if _det3(u) * _det3(vt) < 0:
        u[:, 2] = -u[:, 2]
    rotation = u @ vt
    scale = float(((rotation @ centred) * b_w).sum() / (centred * a_w).sum())
    translation = ((b_w - scale * rotation @ a_w) * sw).sum(axis=1) / total
    out = np.eye(4)
    out[:3, :3] = scale * rotation
    out[:3, 3] = translation
    return out


def transformation_matrix(
    landmarks: np.ndarray,
    width: int,
    height: int,
    canonical: CanonicalFace,
    vertical_fov_degrees: float = VERTICAL_FOV_DEGREES,
    near: float = NEAR,
) -> np.ndarray | None:
    """MediaPipe's facial transformation matrix from normalised landmarks.

    Parameters
    ----------
    landmarks:
        (>=468, 3) normalised image landmarks ``(x / W, y / H, z / W)``; only the first 468 are used.
    width, height:
        Image size in pixels.

    Returns
    -------
    (4, 4) float64 matrix mapping canonical-model points (cm) to camera space, or None when the
    landmarks are degenerate (all within 1e-3 of their mean).
    """
    pts = np.asarray(landmarks, dtype=np.float64)[:NUM_MESH_LANDMARKS].T.copy()  # (3, 468)
    xy = pts[:2]
    if np.sqrt(((xy - xy.mean(axis=1, keepdims=True)) ** 2).sum(axis=0)).max() <= 1e-3:
        return None
    h_n = 2.0 * near * math.tan(0.5 * math.radians(vertical_fov_degrees))
    w_n = h_n * width / height
    pts[1] = 1.0 - pts[1]
    pts[0] = pts[0] * w_n - w_n / 2
    pts[1] = pts[1] * h_n - h_n / 2
    pts[2] = pts[2] * w_n
    depth_offset = pts[2].mean()
    # landmarks with zero weight do not enter the Procrustes sums: solve on the weighted ones only
    used = np.nonzero(canonical.weights)[0]
    pts = pts[:, used]
    source = canonical.vertices[used].T
    weights = canonical.weights[used]

    def scale_of(points: np.ndarray) -> float:
        return float(np.linalg.norm(weighted_procrustes(source, points, weights)[:3, 0]))

    def unproject(z_divisor: float) -> np.ndarray:
        out = pts.copy()
        out[2] = (out[2] - depth_offset + near) / z_divisor
        out[0] = out[0] * out[2] / near
        out[1] = out[1] * out[2] / near
        out[2] = -out[2]
        return out

    first = pts.copy()
    first[2] = -first[2]
    s1 = scale_of(first)
    s2 = scale_of(unproject(s1))
    metric = unproject(s1 * s2)
    return weighted_procrustes(source, metric, weights)


def head_pose_angles(matrix: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll in degrees from a facial transformation matrix, in facelib's convention.

    facelib's one convention (``docs/decisions.md``, "Head-pose angles") is that of the
    300W-LP / AFLW2000 ``Pose_Para`` labels, which :class:`~facelib.HeadPose` (FSA-Net) is
    trained on: for a face looking at the camera in an unmirrored image, yaw > 0 turns the face
    towards the image left (the subject's own right), pitch > 0 raises the chin (looking up),
    roll > 0 tilts the head clockwise on screen.  In MediaPipe's camera space (+X image right,
    +Y up, +Z towards the viewer) the rotation part R (scale removed) of the matrix is
    ``R = Ry(-yaw) @ Rx(-pitch) @ Rz(-roll)`` with right-handed elementary rotations.

    Returns
    -------
    (3,) float64 ``[yaw, pitch, roll]`` in degrees.
    """
    rot = np.asarray(matrix, dtype=np.float64)[:3, :3]
    rot = rot / np.linalg.norm(rot, axis=0, keepdims=True)
    pitch = math.asin(max(-1.0, min(1.0, -rot[1, 2])))
    yaw = math.atan2(rot[0, 2], rot[2, 2])
    roll = math.atan2(rot[1, 0], rot[1, 1])
    return -np.degrees(np.array([yaw, pitch, roll])) + 0.0  # + 0.0: no negative zeros
