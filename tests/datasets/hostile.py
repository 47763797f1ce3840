"""Small files that declare far more than they hold, for the import's cheap refusals (issue 21).

Each is written without ever holding its declared size in memory: a NIfTI header claiming
1200^3 voxels, an .npz whose .npy header claims 100 GB, an .npz of zeros that expands
hundreds of times (a zip bomb), an HDF5 file whose datasets are declared but never written.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

ZERO_BLOCK = 16 * 1024 * 1024


def nifti_header_only(path: Path, shape=(1200, 1200, 1200)) -> None:
    """A 1 KB .nii whose header claims ``shape`` float32 voxels (about 6.9 GB for 1200^3)."""
    import nibabel

    header = nibabel.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(header.binaryblock)
        handle.write(b"\0" * (1024 - len(header.binaryblock)))


def npz_claiming(path: Path, shape=(25_000, 1000, 1000), held: int = 4096) -> None:
    """An .npz whose x.npy header declares ``shape`` float32 (100 GB by default) and holds ``held`` bytes."""
    with zipfile.ZipFile(path, "w") as archive, archive.open("x.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": shape})
        member.write(b"\0" * held)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("y.npy", _npy(np.zeros(shape[0] if shape[0] < 10**6 else 10, dtype=np.int64)))


def npz_bomb(path: Path, zero_bytes: int = 2 * 1024**3, edge: int = 16) -> None:
    """An .npz whose x.npy holds ``zero_bytes`` of float32 zeros (2 GiB by default) in about 2 MB.

    Written by hand in a second: the zeros are deflated once per 64 MiB block with a full flush, so the
    same compressed block repeats (a full flush resets the compressor); then a plain zip is laid around it.
    """
    import struct
    import zlib

    rows = zero_bytes // (4 * edge**3)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (rows, edge, edge, edge)})
    block = bytes(64 * 1024**2)
    body = rows * 4 * edge**3
    assert body % len(block) == 0 and len(header.getvalue()) + body < 2**32
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = first.compress(header.getvalue()) + first.flush(zlib.Z_FULL_FLUSH)
    repeat = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = repeat.compress(block) + repeat.flush(zlib.Z_FULL_FLUSH)
    data = head + chunk * (body // len(block)) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = zlib.crc32(header.getvalue())
    for _ in range(body // len(block)):
        crc = zlib.crc32(block, crc)
    size = len(header.getvalue()) + body
    name = b"x.npy"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0) + name
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size, len(name),
                          0, 0, 0, 0, 0, 0) + name
    with open(path, "wb") as handle:
        handle.write(local + data)
        directory_at = handle.tell()
        handle.write(central)
        handle.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), directory_at, 0))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("y.npy", _npy((np.arange(rows) % 2).astype(np.int8)))


def hdf5_declared(path: Path, rows: int = 4, edge: int = 1200) -> None:
    """An HDF5 file whose x (rows, edge, edge, edge) float32 is declared (chunked, never written) and y fits."""
    import h5py

    with h5py.File(path, "w") as handle:
        handle.create_dataset("x", shape=(rows, edge, edge, edge), dtype="f4", chunks=(1, 8, 8, 8))
        handle["y"] = np.arange(rows) % 2


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
