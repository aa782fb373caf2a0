"""Headless software rendering of mesh animations (numpy z-buffer rasteriser, no OpenGL).

The camera follows upstream FaceFormer's renderer (after VOCA): a pinhole camera at z = 1
looking down -z at the mesh, which is centred on the centroid of the first frame; 800 x 800
pixels, focal 4754.97941935/2 px (vocaset) or /8 (BIWI), principal point at the image centre.
A smaller ``size`` scales focal length and principal point with the image.  Shading is
Lambertian (flat per face or Gouraud per vertex) under five directional lights: one along the
view axis and four tilted 30 degrees about x and y, plus ambient light.

Images are RGB uint8 (H, W, 3); +x is right and +y is up in mesh space, image rows grow downward.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import attrs
import numpy as np

from facelib.errors import InputError

FOCAL_800 = 4754.97941935
_BATCH = 1 << 21  # candidate pixels per rasterisation batch


@attrs.frozen
class Camera:
    """Pinhole camera at (0, 0, ``distance``) looking toward -z; intrinsics in pixels."""

    width: int = 800
    height: int = 800
    focal: float = FOCAL_800 / 2
    cx: float = 400.0
    cy: float = 400.0
    distance: float = 1.0

    @classmethod
    def for_dataset(cls, dataset: str = "vocaset", size: int = 800) -> Camera:
        """Upstream's camera (vocaset focal /2, BIWI /8) scaled to a ``size`` x ``size`` image."""
        divisor = {"vocaset": 2.0, "biwi": 8.0}.get(dataset.lower())
        if divisor is None:
            raise InputError(f"unknown dataset {dataset!r} for the camera; use 'vocaset' or 'biwi'")
        scale = size / 800.0
        return cls(size, size, FOCAL_800 / divisor * scale, 400.0 * scale, 400.0 * scale)

    def project(self, vertices: np.ndarray) -> np.ndarray:
        """(V, 3) mesh points -> (V, 3) pixel x, pixel y (from the top-left) and depth (> 0)."""
        depth = self.distance - vertices[:, 2]
        safe = np.where(depth > 1e-6, depth, 1e-6)
        u = self.cx + self.focal * vertices[:, 0] / safe
        v = self.cy - self.focal * vertices[:, 1] / safe
        return np.stack([u, v, depth], axis=1)


def _lights() -> np.ndarray:
    dirs = [np.array([0.0, 0.0, 1.0])]
    a = math.radians(30)
    for axis in ("x", "y"):
        for sign in (1, -1):
            c, s = math.cos(sign * a), math.sin(sign * a)
            if axis == "x":
                dirs.append(np.array([0.0, -s, c]))
            else:
                dirs.append(np.array([s, 0.0, c]))
    return np.stack(dirs).astype(np.float32)  # directions toward the lights


_LIGHTS = _lights()


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit face normals (F, 3) and area-weighted vertex normals (V, 3)."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-12)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
    return fn, vn


def _intensity(normals: np.ndarray, ambient: float) -> np.ndarray:
    lambert = np.clip(normals @ _LIGHTS.T, 0.0, None).sum(axis=1) / len(_LIGHTS) * 1.6
    return np.clip(ambient + lambert, 0.0, 1.0)


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: Camera | None = None,
    *,
    center: np.ndarray | None = None,
    shading: str = "gouraud",
    color: tuple[float, float, float] = (0.78, 0.78, 0.78),
    background: tuple[int, int, int] = (255, 255, 255),
    ambient: float = 0.25,
) -> np.ndarray:
    """Rasterise one mesh frame.

    Parameters
    ----------
    vertices:
        (V, 3) float positions (template units, metres).
    faces:
        (F, 3) int triangle vertex indices.
    center:
        Point moved to the origin before viewing (default: this frame's centroid; animations
        pass frame 0's centroid, as upstream).
    shading:
        ``"gouraud"`` (per-vertex lighting interpolated) or ``"flat"`` (per face).

    Returns
    -------
    (H, W, 3) uint8 RGB image.
    """
    camera = camera or Camera()
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(f) == 0:
        raise InputError("rendering needs triangle faces; read the template with faces (.ply/.obj)")
    v = v - (v.mean(axis=0) if center is None else np.asarray(center, dtype=np.float64))
    fn, vn = vertex_normals(v, f)
    if shading == "gouraud":
        shade_v = _intensity(vn, ambient)
    elif shading == "flat":
        shade_f = _intensity(fn, ambient)
    else:
        raise InputError(f"shading must be 'gouraud' or 'flat', got {shading!r}")
    p = camera.project(v)
    w, h = camera.width, camera.height
    tri = p[f]  # (F, 3, 3)
    x0 = np.clip(np.floor(tri[:, :, 0].min(1) - 0.5), 0, w - 1).astype(np.int64)
    x1 = np.clip(np.ceil(tri[:, :, 0].max(1) - 0.5), 0, w - 1).astype(np.int64)
    y0 = np.clip(np.floor(tri[:, :, 1].min(1) - 0.5), 0, h - 1).astype(np.int64)
    y1 = np.clip(np.ceil(tri[:, :, 1].max(1) - 0.5), 0, h - 1).astype(np.int64)
    area = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - (tri[:, 2, 0] - tri[:, 0, 0]) * (
        tri[:, 1, 1] - tri[:, 0, 1]
    )
    keep = (np.abs(area) > 1e-12) & (x1 >= x0) & (y1 >= y0) & (tri[:, :, 2].min(1) > 1e-6)
    ids_all = np.nonzero(keep)[0]
    counts_all = (x1 - x0 + 1)[ids_all] * (y1 - y0 + 1)[ids_all]
    # per triangle, screen-space planes q(x, y) = ax + by + c of the barycentrics w0, w1, of
    # 1/depth (perspective-correct depth) and, for Gouraud, of the shade
    xa, ya = tri[:, 0, 0], tri[:, 0, 1]
    xb, yb = tri[:, 1, 0], tri[:, 1, 1]
    xc, yc = tri[:, 2, 0], tri[:, 2, 1]
    safe = np.where(keep, area, 1.0)
    w0p = np.stack([(yb - yc) / safe, (xc - xb) / safe, (xb * yc - xc * yb) / safe], axis=1)
    w1p = np.stack([(yc - ya) / safe, (xa - xc) / safe, (xc * ya - xa * yc) / safe], axis=1)
    w2p = np.array([0.0, 0.0, 1.0])[None] - w0p - w1p
    inv = 1.0 / tri[:, :, 2]
    vals = shade_v[f] if shading == "gouraud" else np.repeat(shade_f[:, None], 3, axis=1)
    planes = np.concatenate(
        [w0p, w1p, w2p] + [w0p * q[:, 0:1] + w1p * q[:, 1:2] + w2p * q[:, 2:3] for q in (inv, vals)],
        axis=1,
    ).astype(np.float32)  # (F, 15)
    image = np.empty((h, w, 3), np.uint8)
    image[:] = np.asarray(background, np.uint8)
    zbuf = np.full(h * w, -np.inf, np.float32)  # stores 1/depth: larger is nearer
    value = np.zeros(h * w, np.float32)
    group = np.cumsum(counts_all) // _BATCH  # batches of ~2M candidate pixels: bounded memory
    for ids in np.split(ids_all, np.nonzero(np.diff(group))[0] + 1):
        if len(ids) == 0:
            continue
        bw, bh = (x1 - x0 + 1)[ids], (y1 - y0 + 1)[ids]
        counts = bw * bh
        owner = np.repeat(np.arange(len(ids)), counts)
        local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        t = ids[owner]
        px = x0[t] + local % bw[owner]
        py = y0[t] + local // bw[owner]
        cx = (px + 0.5).astype(np.float32)
        cy = (py + 0.5).astype(np.float32)
        pl = planes[t]

        def ev(k: int, pl: np.ndarray = pl, cx: np.ndarray = cx, cy: np.ndarray = cy) -> np.ndarray:
            return pl[:, 3 * k] * cx + pl[:, 3 * k + 1] * cy + pl[:, 3 * k + 2]

        inside = (ev(0) >= 0) & (ev(1) >= 0) & (ev(2) >= 0)
        pl, cx, cy = pl[inside], cx[inside], cy[inside]
        pix = (py * w + px)[inside]
        invz = ev(3, pl, cx, cy)
        shade = ev(4, pl, cx, cy) / invz
        np.maximum.at(zbuf, pix, invz)  # z-test: nearest fragment per pixel
        win = invz >= zbuf[pix]
        value[pix[win]] = shade[win]
    hit = zbuf > -np.inf
    rgb = np.clip(value[hit, None] * np.asarray(color)[None] * 255.0, 0, 255).astype(np.uint8)
    image.reshape(-1, 3)[hit] = rgb
    return image


def render_animation(
    frames: Iterable[np.ndarray],
    faces: np.ndarray,
    path: str | os.PathLike[str],
    fps: float,
    *,
    audio: str | os.PathLike[str] | None = None,
    dataset: str = "vocaset",
    size: int = 800,
    shading: str = "gouraud",
) -> Path:
    """Render (V, 3) frames to a video (H.264 via ffmpeg when available) with audio muxed in.

    All frames are centred on the first frame's centroid (as upstream).  Frames are consumed
    one at a time (bounded memory).  Returns the video path.
    """
    from facelib.io.video import VideoWriter

    camera = Camera.for_dataset(dataset, size)
    center = None
    with VideoWriter(path, fps, audio=audio) as writer:
        for frame in frames:
            frame = np.asarray(frame, dtype=np.float64).reshape(-1, 3)
            if center is None:
                center = frame.mean(axis=0)
            writer.write(render_mesh(frame, faces, camera, center=center, shading=shading))
        if center is None:
            raise InputError("no frames to render")
    return Path(path)
