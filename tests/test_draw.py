"""Drawing boxes and head-pose axes (facelib's head-pose convention, right-handed head axes)."""

from __future__ import annotations

import numpy as np

from facelib.io.draw import draw_box, draw_pose_axes, pose_axes


def test_frontal_axes():
    # X right, Y up (towards the top of the head), Z towards the viewer (zero length)
    ends = pose_axes(0, 0, 0, size=50)
    np.testing.assert_allclose(ends, [[50, 0], [0, -50], [0, 0]], atol=1e-9)


def test_axes_are_those_of_the_blendshape_transform():
    """HeadPose's drawing and BlendshapeCapture's (projected transform) show the same head axes."""
    import math

    from facelib.processing.face_geometry import head_pose_angles

    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b, c = rng.uniform(-0.8, 0.8, 3)
        ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
        rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
        rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
        m = np.eye(4)
        m[:3, :3] = 3.0 * ry @ rx @ rz
        yaw, pitch, roll = head_pose_angles(m)
        rot = m[:3, :3] / 3.0
        np.testing.assert_allclose(pose_axes(yaw, pitch, roll, size=1.0), np.stack([rot[0], -rot[1]], 1), atol=1e-9)


def test_yaw_is_negated_like_upstream():
    # upstream: yaw = -(yaw deg in rad); Z end = (size sin(yaw'), -size cos(yaw') sin(pitch))
    ends = pose_axes(30, 0, 0, size=50)
    assert ends[2, 0] == np.float64(50 * np.sin(-np.radians(30)))
    assert ends[2, 0] < 0  # positive yaw swings Z to the image's left
    ends = pose_axes(0, 0, 90, size=10)
    np.testing.assert_allclose(ends[0], [0, 10], atol=1e-9)  # roll turns X downwards


def test_draw_returns_new_images_with_colours():
    image = np.zeros((100, 100, 3), np.uint8)
    out = draw_pose_axes(image, 20, 10, 5)
    assert out is not image and image.max() == 0
    assert (out[..., 0] == 255).any() and (out[..., 1] == 255).any() and (out[..., 2] == 255).any()
    boxed = draw_box(image, [10, 10, 50, 60], label="face")
    assert boxed[10, 30, 1] == 255 and image.max() == 0
