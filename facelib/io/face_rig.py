"""Format-neutral face rigs and blendshape takes, shared by the FBX, glTF and USD exporters.

A :class:`FaceRig` is what the exporters write: one or more meshes, each with its rest points,
polygons and named blend shapes (offsets from the rest points).  It comes from the user's
character (``--rig``, read by :func:`facelib.io.animation_export.load_rig`) or from
:func:`facelib.io.standin_face.standin_face`.  A :class:`BlendshapeTake` is the animation: ARKit-52
weights over time.  :func:`match_channels` pairs the rig's blend shapes with ARKit names.

Units and axes: points in metres, right-handed, Y up, the face looking along +Z (glTF's and
ARKit's convention; the FBX and USD writers declare it in the file).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from facelib.errors import InputError
from facelib.processing.arkit import ARKIT_NAMES, arkit_index


@attrs.frozen
class RigMesh:
    """One mesh of a rig.

    Attributes
    ----------
    name:
        Mesh (object) name.
    points:
        (V, 3) float32 rest positions, metres, in world space (node transforms applied).
    face_counts:
        (F,) int32 corners of each polygon (3 for triangles).
    face_indices:
        (sum(face_counts),) int32 point index of each corner, polygon after polygon.
    shape_names:
        Names of the blend shapes, in the mesh's own order.
    shape_offsets:
        (S, V, 3) float32 offset of every point at full weight, S = len(shape_names).
    """

    name: str
    points: np.ndarray
    face_counts: np.ndarray
    face_indices: np.ndarray
    shape_names: tuple[str, ...]
    shape_offsets: np.ndarray

    def __attrs_post_init__(self) -> None:
        v = len(self.points)
        if self.points.ndim != 2 or self.points.shape[1] != 3:
            raise InputError(f"mesh {self.name!r}: points must be (V, 3), got {self.points.shape}")
        if int(self.face_counts.sum()) != len(self.face_indices):
            raise InputError(
                f"mesh {self.name!r}: face counts add up to {int(self.face_counts.sum())}, "
                f"but there are {len(self.face_indices)} corner indices"
            )
        if len(self.face_indices) and (int(self.face_indices.min()) < 0 or int(self.face_indices.max()) >= v):
            raise InputError(f"mesh {self.name!r}: polygon indices fall outside its {v} points")
        if self.shape_offsets.shape != (len(self.shape_names), v, 3):
            raise InputError(
                f"mesh {self.name!r}: shape offsets {self.shape_offsets.shape} do not match "
                f"{len(self.shape_names)} shapes of {v} points"
            )

    def triangles(self) -> np.ndarray:
        """(N, 3) int32 triangles (polygons fanned from their first corner)."""
        out: list[tuple[int, int, int]] = []
        start = 0
        for n in self.face_counts.tolist():
            poly = self.face_indices[start : start + n]
            out.extend((poly[0], poly[k], poly[k + 1]) for k in range(1, n - 1))
            start += n
        return np.asarray(out, np.int32).reshape(-1, 3)


@attrs.frozen
class FaceRig:
    """Meshes with blend shapes; ``source`` says where they came from (a path or ``"stand-in"``)."""

    meshes: tuple[RigMesh, ...]
    source: str


@attrs.frozen
class BlendshapeTake:
    """ARKit weights over time.

    Attributes
    ----------
    times:
        (T,) float64 seconds, strictly increasing (the source video's frame times).
    weights:
        (T, 52) float32 in :data:`~facelib.processing.arkit.ARKIT_NAMES` order, in [0, 1].
    fps:
        Nominal frame rate (frames per second) that the files declare as their scene rate.
    """

    times: np.ndarray
    weights: np.ndarray
    fps: float

    def __attrs_post_init__(self) -> None:
        if self.weights.ndim != 2 or self.weights.shape[1] != len(ARKIT_NAMES):
            raise InputError(f"blendshape weights must be (frames, 52), got {self.weights.shape}")
        if self.times.shape != (len(self.weights),):
            raise InputError(f"{len(self.times)} frame times for {len(self.weights)} frames of weights")
        if len(self.times) == 0:
            raise InputError("the take has no frames; nothing to export")
        if not np.isfinite(self.weights).all() or not np.isfinite(self.times).all():
            raise InputError("the take has NaN or infinite weights or times")
        if len(self.times) > 1 and not (np.diff(self.times) > 0).all():
            raise InputError("frame times must increase strictly")
        if not self.fps > 0:
            raise InputError(f"fps must be positive, got {self.fps}")

    @classmethod
    def from_weights(cls, weights: np.ndarray, fps: float, times: np.ndarray | None = None) -> BlendshapeTake:
        """A take from (T, 52) weights; ``times`` (seconds) default to ``i / fps``."""
        w = np.asarray(weights, np.float32)
        if w.ndim != 2:
            raise InputError(f"blendshape weights must be (frames, 52), got shape {w.shape}")
        t = np.arange(len(w), dtype=np.float64) / float(fps) if times is None else np.asarray(times, np.float64)
        return cls(times=t, weights=w, fps=float(fps))

    @property
    def frames(self) -> np.ndarray:
        """(T,) float64 time of each sample in frames of :attr:`fps` (integers for a constant rate)."""
        return self.times * self.fps


def nominal_fps(times: np.ndarray, default: float = 30.0) -> float:
    """Frame rate implied by frame times (seconds): 1 / the median spacing, snapped to a whole
    rate or an NTSC one (N * 1000/1001, e.g. 29.97) when within 1e-5 of it."""
    if len(times) < 2:
        return default
    step = float(np.median(np.diff(times)))
    if not step > 0:
        return default
    rate = 1.0 / step
    for candidate in (float(round(rate)), round(rate * 1.001) * 1000.0 / 1001.0):
        if candidate > 0 and abs(rate - candidate) <= 1e-5 * candidate:
            return candidate
    return rate


@attrs.frozen
class ChannelMatch:
    """How a rig's blend shapes were paired with ARKit names.

    Attributes
    ----------
    channels:
        Per mesh, per blend shape: the ARKit index that drives it, or None (left at 0).
    unmatched_rig:
        ``"mesh/shape"`` names of rig blend shapes that match no ARKit name.
    missing_arkit:
        ARKit names that no mesh of the rig has (their animation is dropped).
    """

    channels: tuple[tuple[int | None, ...], ...]
    unmatched_rig: tuple[str, ...]
    missing_arkit: tuple[str, ...]

    @property
    def matched(self) -> int:
        """How many of the 52 ARKit names drive at least one blend shape."""
        return len(ARKIT_NAMES) - len(self.missing_arkit)

    def report(self) -> str:
        """A few lines for people: what was matched and what was not."""
        lines = [f"{self.matched} of {len(ARKIT_NAMES)} ARKit blendshapes matched on the rig"]
        if self.missing_arkit:
            lines.append(f"  not on the rig (not animated): {', '.join(self.missing_arkit)}")
        if self.unmatched_rig:
            lines.append(f"  rig blend shapes with no ARKit name (left at 0): {', '.join(self.unmatched_rig)}")
        return "\n".join(lines)


def match_channels(rig: FaceRig) -> ChannelMatch:
    """Pair each blend shape of ``rig`` with an ARKit name (case-, ``_``- and L/R-insensitive).

    Raises :class:`~facelib.errors.InputError` when nothing matches (the rig has no ARKit shapes).
    """
    channels = []
    unmatched = []
    used: set[int] = set()
    for mesh in rig.meshes:
        row = []
        for name in mesh.shape_names:
            idx = arkit_index(name)
            row.append(idx)
            if idx is None:
                unmatched.append(f"{mesh.name}/{name}")
            else:
                used.add(idx)
        channels.append(tuple(row))
    if not used:
        names = sorted({n for m in rig.meshes for n in m.shape_names})
        shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "") if names else "none"
        raise InputError(
            f"no blend shape of the rig {rig.source} has an ARKit name (it has: {shown}); "
            "rename its shape keys / morph targets to ARKit names (e.g. jawOpen, eyeBlinkLeft)"
        )
    missing = tuple(n for i, n in enumerate(ARKIT_NAMES) if i not in used)
    return ChannelMatch(tuple(channels), tuple(unmatched), missing)


def channel_weights(take: BlendshapeTake, channels: Sequence[int | None]) -> np.ndarray:
    """(T, S) weights of one mesh's S blend shapes (0 for shapes with no ARKit match)."""
    out = np.zeros((len(take.times), len(channels)), np.float32)
    for s, idx in enumerate(channels):
        if idx is not None:
            out[:, s] = take.weights[:, idx]
    return out


def sparse_offsets(offsets: np.ndarray, tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) offsets -> (indices (K,) int32, offsets (K, 3) float32) of the points that move."""
    idx = np.nonzero(np.abs(offsets).max(axis=1) > tol)[0].astype(np.int32)
    return idx, np.asarray(offsets[idx], np.float32)
