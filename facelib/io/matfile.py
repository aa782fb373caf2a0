"""A small reader for MATLAB v5 ``.mat`` files (numeric and char arrays), in numpy only.

Enough for dataset annotations such as AFLW2000-3D (``Pose_Para``, ``pt2d``, ``pt3d_68``) without
making scipy a dependency.  Cells, structs, objects and sparse matrices are skipped; MATLAB v7.3
files (HDF5) are refused with a clear error.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from facelib.errors import MediaReadError

# Data element types (miINT8 ...) -> numpy dtype (byte order set per file).
_MI_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
_MI_MATRIX = 14
_MI_COMPRESSED = 15
_MI_UTF8, _MI_UTF16, _MI_UTF32 = 16, 17, 18
# Array classes (mxDOUBLE_CLASS ...) -> numpy dtype.
_MX_NUMERIC = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}
_MX_CHAR = 4


class _Reader:
    def __init__(self, data: bytes, order: str, where: str) -> None:
        self.data = data
        self.order = order
        self.where = where

    def fail(self, what: str) -> MediaReadError:
        return MediaReadError(f"{self.where}: not a readable MATLAB v5 file ({what})")

    def tag(self, pos: int) -> tuple[int, int, int, int]:
        """(type, nbytes, data start, next element position) of the element at ``pos``."""
        if pos + 8 > len(self.data):
            raise self.fail("truncated element tag")
        first, second = np.frombuffer(self.data, dtype=self.order + "u4", count=2, offset=pos)
        if first >> 16:  # small data element: type and size packed in 4 bytes, data in the next 4
            mtype, nbytes = int(first & 0xFFFF), int(first >> 16)
            if nbytes > 4:
                raise self.fail("bad small element")
            return mtype, nbytes, pos + 4, pos + 8
        mtype, nbytes = int(first), int(second)
        start = pos + 8
        end = start + nbytes
        if mtype != _MI_COMPRESSED:
            end = start + ((nbytes + 7) // 8) * 8
        if start + nbytes > len(self.data):
            raise self.fail("truncated element data")
        return mtype, nbytes, start, end

    def values(self, pos: int) -> tuple[np.ndarray, int]:
        mtype, nbytes, start, end = self.tag(pos)
        if mtype in _MI_TYPES:
            dtype = np.dtype(self.order + _MI_TYPES[mtype])
            return np.frombuffer(self.data, dtype=dtype, count=nbytes // dtype.itemsize, offset=start), end
        if mtype in (_MI_UTF8, _MI_UTF16, _MI_UTF32):
            width = {_MI_UTF8: 1, _MI_UTF16: 2, _MI_UTF32: 4}[mtype]
            dtype = np.dtype(self.order + {1: "u1", 2: "u2", 4: "u4"}[width])
            return np.frombuffer(self.data, dtype=dtype, count=nbytes // width, offset=start), end
        raise self.fail(f"unexpected data type {mtype} inside a matrix")

    def matrix(self, pos: int, end: int) -> tuple[str, np.ndarray | None]:
        flags, pos = self.values(pos)
        mx_class = int(flags[0]) & 0xFF
        complex_ = bool(int(flags[0]) & 0x800)
        dims, pos = self.values(pos)
        name_codes, pos = self.values(pos)
        name = bytes(np.asarray(name_codes, dtype=np.uint8)).decode("ascii", errors="replace")
        shape = tuple(int(d) for d in dims)
        if mx_class in _MX_NUMERIC:
            real, pos = self.values(pos)
            array = real.astype(_MX_NUMERIC[mx_class])
            if complex_:
                imag, pos = self.values(pos)
                array = array + 1j * imag.astype(_MX_NUMERIC[mx_class])
            if array.size != int(np.prod(shape)):
                raise self.fail(f"variable {name!r} has {array.size} values for shape {shape}")
            return name, array.reshape(shape, order="F")
        if mx_class == _MX_CHAR:
            codes, pos = self.values(pos)
            chars = np.asarray(codes).reshape(shape, order="F")
            rows = ["".join(chr(int(c)) for c in row) for row in np.atleast_2d(chars)]
            return name, np.asarray(rows)
        return name, None  # cells, structs, objects, sparse: not needed here


def read_mat(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Numeric and char variables of a MATLAB v5 ``.mat`` file.

    Parameters
    ----------
    path:
        The file.

    Returns
    -------
    dict
        Variable name -> array with MATLAB's shape (at least 2-D; column-major data reordered),
        dtype of the MATLAB class (``double`` -> float64, ``single`` -> float32, ...).  Char
        arrays become arrays of str (one per row).

    Raises
    ------
    MediaReadError
        Missing, empty, truncated or corrupt file, or a MATLAB v7.3 (HDF5) file.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f".mat file not found: {path}")
    data = path.read_bytes()
    if len(data) < 128:
        raise MediaReadError(f"{path}: too short to be a MATLAB file ({len(data)} bytes)")
    if data.startswith(b"\x89HDF") or data[512:516] == b"\x89HDF" or b"MATLAB 7.3" in data[:116]:
        raise MediaReadError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7 or read with h5py")
    if not data.startswith(b"MATLAB 5.0"):
        raise MediaReadError(f"{path}: not a MATLAB v5 .mat file (header {data[:10]!r})")
    endian = data[126:128]
    if endian == b"IM":
        order = "<"
    elif endian == b"MI":
        order = ">"
    else:
        raise MediaReadError(f"{path}: bad MATLAB endian indicator {endian!r}")
    out: dict[str, np.ndarray] = {}
    reader = _Reader(data, order, str(path))
    pos = 128
    while pos < len(data):
        mtype, nbytes, start, end = reader.tag(pos)
        if mtype == _MI_COMPRESSED:
            try:
                inner = zlib.decompress(data[start : start + nbytes])
            except zlib.error as exc:
                raise MediaReadError(f"{path}: corrupt compressed variable ({exc})") from exc
            sub = _Reader(inner, order, str(path))
            itype, _, istart, iend = sub.tag(0)
            if itype == _MI_MATRIX:
                name, value = sub.matrix(istart, iend)
                if value is not None:
                    out[name] = value
        elif mtype == _MI_MATRIX:
            name, value = reader.matrix(start, end)
            if value is not None:
                out[name] = value
        pos = end
    return out
