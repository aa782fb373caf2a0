"""Triangle meshes and vertex animations: read PLY/OBJ/NPY templates, write NPY/OBJ/PLY sequences.

Vertices are float32 (V, 3) in the file's units (FaceFormer templates: metres, y up, z toward
the viewer); faces are int32 (F, 3) zero-based vertex indices (polygons are fan-triangulated).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.errors import InputError, MediaReadError

PathLike = str | os.PathLike[str]

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


@attrs.frozen
class Mesh:
    """A triangle mesh: ``vertices`` (V, 3) float32 and ``faces`` (F, 3) int32 (may be empty)."""

    vertices: np.ndarray
    faces: np.ndarray = attrs.field(factory=lambda: np.zeros((0, 3), np.int32))


def _triangulate(polys: Iterable[Iterable[int]]) -> np.ndarray:
    tris = [(p[0], p[i], p[i + 1]) for p in (list(q) for q in polys) for i in range(1, len(p) - 1)]
    return np.asarray(tris, dtype=np.int32).reshape(-1, 3)


def _read_ply(path: Path) -> Mesh:
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise MediaReadError(f"{path} is not a PLY file (no 'ply' magic or 'end_header')")
    body_start = data.index(b"\n", end) + 1
    header = data[:end].decode("ascii", errors="replace").splitlines()
    fmt = "ascii"
    elements: list[tuple[str, int, list[tuple[str, ...]]]] = []
    for line in header:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "format":
            fmt = parts[1] if len(parts) > 1 else ""
        elif parts[0] == "element":
            if len(parts) != 3 or not parts[2].isdigit():
                raise MediaReadError(f"{path}: malformed PLY header line {line!r}")
            elements.append((parts[1], int(parts[2]), []))
        elif parts[0] == "property" and elements:
            elements[-1][2].append(tuple(parts[1:]))
    vertices: np.ndarray | None = None
    faces = np.zeros((0, 3), np.int32)
    try:
        if fmt == "ascii":
            lines = data[body_start:].decode("ascii").split("\n")
            cursor = 0
            for name, count, props in elements:
                rows = [lines[cursor + i].split() for i in range(count)]
                cursor += count
                if name == "vertex":
                    names = [p[-1] for p in props]
                    arr = np.asarray([[float(r[names.index(a)]) for a in "xyz"] for r in rows], dtype=np.float32)
                    vertices = arr.reshape(-1, 3)
                elif name == "face":
                    faces = _triangulate([int(x) for x in r[1 : 1 + int(r[0])]] for r in rows)
        else:
            endian = "<" if fmt == "binary_little_endian" else ">"
            offset = body_start
            for name, count, props in elements:
                if all(p[0] != "list" for p in props):
                    dtype = np.dtype([(p[1], endian + _PLY_TYPES[p[0]]) for p in props])
                    table: Any = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
                    offset += dtype.itemsize * count
                    if name == "vertex":
                        vertices = np.stack([table[a].astype(np.float32) for a in "xyz"], axis=1)
                    continue
                if len(props) != 1 or name != "face":
                    raise MediaReadError(f"{path}: unsupported PLY element {name!r} with list properties")
                _, count_t, index_t, _ = props[0]
                ct, it = np.dtype(endian + _PLY_TYPES[count_t]), np.dtype(endian + _PLY_TYPES[index_t])
                first = int(np.frombuffer(data, ct, 1, offset)[0])
                uniform = np.dtype([("n", ct), ("i", it, (first,))])
                packed: Any = np.frombuffer(data, uniform, count, offset)  # structured: fields n, i
                if np.all(packed["n"] == first):
                    offset += uniform.itemsize * count
                    faces = _triangulate(packed["i"].tolist()) if first != 3 else packed["i"].astype(np.int32)
                else:
                    polys = []
                    for _ in range(count):
                        n = int(np.frombuffer(data, ct, 1, offset)[0])
                        offset += ct.itemsize
                        polys.append(np.frombuffer(data, it, n, offset).tolist())
                        offset += it.itemsize * n
                    faces = _triangulate(polys)
    except (ValueError, IndexError, KeyError) as exc:
        raise MediaReadError(f"{path} is a truncated or malformed PLY file ({exc})") from exc
    if vertices is None:
        raise MediaReadError(f"{path} has no vertex element")
    return Mesh(np.ascontiguousarray(vertices, dtype=np.float32), faces)


def _read_obj(path: Path) -> Mesh:
    verts: list[list[float]] = []
    polys: list[list[int]] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        try:
            if line.startswith("v "):
                coords = [float(x) for x in line.split()[1:4]]
                if len(coords) != 3:
                    raise ValueError(f"a vertex needs x y z, got {len(coords)} value(s)")
                verts.append(coords)
            elif line.startswith("f "):
                idx = [int(tok.split("/")[0]) for tok in line.split()[1:]]
                polys.append([i - 1 if i > 0 else len(verts) + i for i in idx])
        except ValueError as exc:
            raise MediaReadError(f"{path}, line {number}: malformed OBJ {line.split()[0]!r} line ({exc})") from None
    if not verts:
        raise MediaReadError(f"{path} has no 'v' lines; it is not an OBJ mesh")
    return Mesh(np.asarray(verts, dtype=np.float32), _triangulate(polys))


def read_mesh(path: PathLike | np.ndarray) -> Mesh:
    """Read a template mesh from ``.ply`` (ascii/binary), ``.obj`` or ``.npy`` (V, 3).

    Returns
    -------
    :class:`Mesh` with float32 (V, 3) vertices and int32 (F, 3) faces (empty for .npy).
    """
    if isinstance(path, np.ndarray):
        arr = np.asarray(path, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise InputError(f"a template array must be (V, 3), got {arr.shape}")
        return Mesh(arr)
    p = Path(path)
    if not p.is_file():
        raise MediaReadError(f"mesh file not found: {p}")
    suffix = p.suffix.lower()
    if suffix == ".ply":
        return _checked(_read_ply(p), p)
    if suffix == ".obj":
        return _checked(_read_obj(p), p)
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as exc:  # numpy raises many types on damaged files (ValueError, EOFError, ...)
            raise MediaReadError(f"{p} is not a readable .npy array: {type(exc).__name__}: {exc}") from exc
        if arr.dtype.kind not in "iuf" or arr.size == 0 or arr.size % 3:
            raise MediaReadError(f"{p} must hold a numeric (V, 3) array, got {arr.dtype} {arr.shape}")
        return read_mesh(arr.reshape(-1, 3))
    raise InputError(f"unsupported mesh format {suffix!r}; use .ply, .obj or .npy")


def _checked(mesh: Mesh, path: Path) -> Mesh:
    """Refuse meshes whose faces point outside the vertex list (damaged or misread files)."""
    faces = mesh.faces
    if faces.size and (int(faces.min()) < 0 or int(faces.max()) >= len(mesh.vertices)):
        raise MediaReadError(
            f"{path}: face indices {int(faces.min())}..{int(faces.max())} fall outside the "
            f"{len(mesh.vertices)} vertices; the file is damaged or not a triangle mesh facelib can read"
        )
    return mesh


def write_obj(path: PathLike, vertices: np.ndarray, faces: np.ndarray | None = None) -> Path:
    """Write one OBJ (``v`` lines with 6 decimals, 1-based ``f`` lines)."""
    from facelib.io.atomic import write_bytes_atomic

    v = np.asarray(vertices, dtype=np.float32).reshape(-1, 3)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v.tolist()]
    if faces is not None and len(faces):
        lines += [f"f {a} {b} {c}" for a, b, c in (np.asarray(faces) + 1).tolist()]
    return write_bytes_atomic(path, ("\n".join(lines) + "\n").encode("ascii"), "mesh")


def write_ply(path: PathLike, vertices: np.ndarray, faces: np.ndarray | None = None) -> Path:
    """Write one binary little-endian PLY (float x,y,z; uchar/int face lists)."""
    p = Path(path)
    v = np.ascontiguousarray(vertices, dtype="<f4").reshape(-1, 3)
    f = np.zeros((0, 3), np.int32) if faces is None else np.asarray(faces, dtype="<i4").reshape(-1, 3)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    rows = np.zeros(len(f), dtype=np.dtype([("n", "u1"), ("i", "<i4", (3,))]))
    rows["n"], rows["i"] = 3, f
    from facelib.io.atomic import write_bytes_atomic

    return write_bytes_atomic(p, header.encode("ascii") + v.tobytes() + rows.tobytes(), "mesh")


def write_sequence(
    path: PathLike, vertices: Iterable[np.ndarray], faces: np.ndarray | None = None, fmt: str = "npy"
) -> Path:
    """Write an animation as a folder of per-frame files ``{i}.npy`` (V, 3) / ``{i}.obj`` / ``{i}.ply``.

    ``{i}.npy`` is the FaceFormer evaluation layout.  ``vertices`` may be a (T, V, 3) array or any
    iterable of (V, 3) frames (written as they come; bounded memory).
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(vertices):
        frame = np.asarray(frame, dtype=np.float32).reshape(-1, 3)
        if fmt == "npy":
            from facelib.io.atomic import AtomicOutput

            with AtomicOutput(folder / f"{i}.npy", "array") as out:
                np.save(out.partial, frame)
        elif fmt == "obj":
            write_obj(folder / f"{i}.obj", frame, faces)
        elif fmt == "ply":
            write_ply(folder / f"{i}.ply", frame, faces)
        else:
            raise InputError(f"unknown sequence format {fmt!r}; use npy, obj or ply")
    return folder


class NpyFrameWriter:
    """Write (V, 3) frames one at a time into a (T, V, 3) float32 ``.npy`` (bounded memory).

    Frames go to a side file as they come; :meth:`close` writes the header with the final T and
    streams the data after it.  Use as a context manager.
    """

    def __init__(self, path: PathLike) -> None:
        from facelib.io.atomic import AtomicOutput, partial_path

        self.path = Path(path)
        self._out = AtomicOutput(self.path, "array")  # the finished array, renamed onto path
        self._part = partial_path(self.path.with_suffix(".frames"))  # raw frames as they come
        self._fh = open(self._part, "wb")  # noqa: SIM115 - closed in close()
        self.count = 0
        self.frame_shape: tuple[int, ...] | None = None

    def write(self, frame: np.ndarray) -> None:
        arr = np.ascontiguousarray(frame, dtype="<f4")
        if self.frame_shape is None:
            self.frame_shape = arr.shape
        elif arr.shape != self.frame_shape:
            raise InputError(f"frame shape {arr.shape} differs from the first frame's {self.frame_shape}")
        self._fh.write(arr.tobytes())
        self.count += 1

    def close(self) -> Path:
        if self._fh.closed:
            return self.path
        self._fh.close()
        shape = (self.count, *(self.frame_shape or (0, 3)))
        try:
            with open(self._out.partial, "wb") as out, open(self._part, "rb") as src:
                np.lib.format.write_array_header_1_0(out, {"descr": "<f4", "fortran_order": False, "shape": shape})
                while chunk := src.read(1 << 24):
                    out.write(chunk)
        except BaseException:
            self._out.discard()
            raise
        finally:
            self._part.unlink(missing_ok=True)
        return self._out.commit()

    def __enter__(self) -> NpyFrameWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:  # failed run: leave no half-written output behind
            self._fh.close()
            self._part.unlink(missing_ok=True)
            self._out.discard()
