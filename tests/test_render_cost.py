"""The rasteriser's cost per triangle is its rows plus the pixels it covers, not its box (issue 20)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from facelib.io import render


def _sliver_setup(width: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One long thin triangle across the whole image, as a spiky mesh is made of."""
    tri = np.array([[[0.0, 0.0, 1.0], [width - 1.0, width - 1.0, 1.0], [width - 1.0, width - 3.0, 1.0]]])
    xa, ya = tri[:, 0, 0], tri[:, 0, 1]
    xb, yb = tri[:, 1, 0], tri[:, 1, 1]
    xc, yc = tri[:, 2, 0], tri[:, 2, 1]
    area = (xb - xa) * (yc - ya) - (xc - xa) * (yb - ya)
    w0 = np.stack([(yb - yc) / area, (xc - xb) / area, (xb * yc - xc * yb) / area], axis=1)
    w1 = np.stack([(yc - ya) / area, (xa - xc) / area, (xc * ya - xa * yc) / area], axis=1)
    w2 = np.array([[0.0, 0.0, 1.0]]) - w0 - w1
    planes = np.concatenate([w0, w1, w2, w0, w0], axis=1).astype(np.float32)
    lo = np.zeros(1, np.int64)
    hi = np.full(1, width - 1, np.int64)
    return planes, np.zeros(1, np.int64), lo, hi, lo, hi


def test_a_sliver_costs_its_rows_not_its_box():
    width = 400
    planes, ids, x0, x1, y0, y1 = _sliver_setup(width)
    candidates = sum(len(px) for _, px, _ in render._fragments(planes, ids, x0, x1, y0, y1))
    assert candidates < 6 * width  # its box is width**2 = 160000 pixels
    # and every pixel the triangle covers is among the candidates
    covered = 0
    for t, px, py in render._fragments(planes, ids, x0, x1, y0, y1):
        cx, cy = px + 0.5, py + 0.5
        pl = planes[t]
        inside = np.ones(len(px), bool)
        for k in range(3):
            inside &= pl[:, 3 * k] * cx + pl[:, 3 * k + 1] * cy + pl[:, 3 * k + 2] >= 0
        covered += int(inside.sum())
    gx, gy = np.meshgrid(np.arange(width) + 0.5, np.arange(width) + 0.5)
    brute = np.ones(gx.shape, bool)
    for k in range(3):
        brute &= planes[0, 3 * k] * gx + planes[0, 3 * k + 1] * gy + planes[0, 3 * k + 2] >= 0
    assert covered == int(brute.sum()) > 0


def test_spiky_mesh_warns_once(caplog: pytest.LogCaptureFixture, tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    vertices = rng.normal(0, 0.2, (n, 3)) * [1, 1, 0.1]
    faces = rng.integers(0, n, (1500, 3))
    camera = render.Camera.for_dataset("vocaset", 64)
    assert render.overdraw(vertices, faces, camera) > render.SPIKY_OVERDRAW
    with caplog.at_level(logging.WARNING, logger="facelib.render"):
        render.render_animation([vertices, vertices], faces, tmp_path / "a.mp4", 25, size=64)
    assert sum("spiky mesh" in r.getMessage() for r in caplog.records) == 1
    assert (tmp_path / "a.mp4").stat().st_size > 0
