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
    for t, px, py in _fragments(planes, ids_all, x0, x1, y0, y1):
        pl = planes[t]
        cx = (px + 0.5).astype(np.float32)
        cy = (py + 0.5).astype(np.float32)

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


#: Triangle area over image area above which :func:`render_animation` warns (ordinary meshes: ~1-3).
SPIKY_OVERDRAW = 20.0


def overdraw(vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> float:
    """Screen area of all front-facing and back-facing triangles over the image area.

    A face mesh covers its pixels one to three times; a spiky mesh (random weights, a template
    that does not fit the model) tens of times, and the rasteriser's cost grows with it.
    """
    tri = camera.project(np.asarray(vertices, np.float64).reshape(-1, 3))[faces]
    tri[:, :, 0] = np.clip(tri[:, :, 0], 0, camera.width)
    tri[:, :, 1] = np.clip(tri[:, :, 1], 0, camera.height)
    d1, d2 = tri[:, 1, :2] - tri[:, 0, :2], tri[:, 2, :2] - tri[:, 0, :2]
    area = 0.5 * np.abs(d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1])
    return float(area.sum() / (camera.width * camera.height))


def _warn_if_spiky(vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> None:
    import logging

    ratio = overdraw(vertices, faces, camera)
    if ratio > SPIKY_OVERDRAW:
        logging.getLogger("facelib.render").warning(
            "facelib: warning: the mesh's triangles cover the image %.0f times over (a spiky mesh: random "
            "weights, or a template that does not fit the model?); rendering will be slow",
            ratio,
        )


def _split(ids: np.ndarray, sizes: np.ndarray, limit: int) -> list[np.ndarray]:
    """``ids`` in consecutive groups whose ``sizes`` add up to about ``limit`` (bounded memory)."""
    group = np.cumsum(sizes) // limit
    return [part for part in np.split(ids, np.nonzero(np.diff(group))[0] + 1) if len(part)]


def _fragments(
    planes: np.ndarray, ids_all: np.ndarray, x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray
) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Candidate pixels (triangle, x, y) of the triangles ``ids_all``, in batches.

    Scanline spans: for every pixel row of a triangle's box, the three edge planes give the x
    interval the triangle covers there, widened by one pixel on each side (the caller's exact
    inside test decides).  So a triangle costs its box height plus the pixels it covers, not
    its box area: the long thin slivers of a spiky mesh (a random-weight model, a bad fit) no
    longer cost a full screen each.
    """
    heights = (y1 - y0 + 1)[ids_all]
    for ids in _split(ids_all, heights, _BATCH):
        bh = (y1 - y0 + 1)[ids]
        owner = np.repeat(np.arange(len(ids)), bh)
        t = ids[owner]
        py = y0[t] + np.arange(bh.sum()) - np.repeat(np.cumsum(bh) - bh, bh)
        cy = py + 0.5
        lo = x0[t].astype(np.float64)
        hi = x1[t].astype(np.float64)
        pl = planes[t].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            for k in range(3):
                a, rest = pl[:, 3 * k], pl[:, 3 * k + 1] * cy + pl[:, 3 * k + 2]
                edge = -rest / a  # x where this edge's barycentric is 0 on this row
                flat = np.abs(a) < 1e-9
                lo = np.where((a > 0) & ~flat, np.maximum(lo, np.ceil(edge - 0.5) - 1), lo)
                hi = np.where((a < 0) & ~flat, np.minimum(hi, np.floor(edge - 0.5) + 1), hi)
                hi = np.where(flat & (rest < -1e-6), lo - 1, hi)  # parallel edge, row outside
        start = np.nan_to_num(lo, nan=0.0).astype(np.int64)
        width = np.maximum(np.nan_to_num(hi, nan=-1.0).astype(np.int64) - start + 1, 0)
        rows = np.nonzero(width)[0]
        for part in _split(rows, width[rows], _BATCH):
            counts = width[part]
            row = np.repeat(part, counts)
            px = start[row] + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            yield t[row], px, py[row]


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
                _warn_if_spiky(frame - center, np.asarray(faces, np.int64).reshape(-1, 3), camera)
            writer.write(render_mesh(frame, faces, camera, center=center, shading=shading))
        if center is None:
            raise InputError("no frames to render")
    return Path(path)
