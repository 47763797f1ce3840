"""On-disk cache of generated and preprocessed datasets, read back through memory maps.

A dataset is cached by a fingerprint of its source and every parameter that
shapes it, so a changed knob never reads stale volumes. Files are written into
a temporary folder and renamed into place, so a crash (or two workers building
the same dataset at once) never leaves a half-written cache entry behind.

The cache is bounded: ``CONV3D_LAB_CACHE_MB`` (default DEFAULT_LIMIT_MB).
Every ``load`` records the entry's last use (the modification time of its
``last_used`` file); after a ``save`` the least recently used entries are
evicted until the cache fits, never the entry just written (a single entry
larger than the limit stays). An evicted entry is first renamed away, so a
reader sees it whole or not at all (a run already reading it through its
memory map keeps its open file).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine import paths
from engine.errors import DataError

# Bump when a generator changes its output, so old caches are not reused.
CACHE_VERSION = 1
LIMIT_ENV = "CONV3D_LAB_CACHE_MB"
DEFAULT_LIMIT_MB = 4096
_LAST_USED = "last_used"


def fingerprint(name: str, options: dict[str, Any]) -> str:
    payload = json.dumps({"name": name, "options": options, "version": CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def entry_dir(name: str, key: str) -> Path:
    return paths.data_cache_dir() / f"{name}-{key}"


def is_cached(name: str, key: str) -> bool:
    """Whether the entry exists (not a use: its last-use time is left alone)."""
    return (entry_dir(name, key) / "meta.json").exists()


def load(name: str, key: str) -> dict[str, Any] | None:
    """The cached arrays (x as a read-only memory map) and metadata, or None when not cached."""
    folder = entry_dir(name, key)
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        arrays = {"x": np.load(folder / "x.npy", mmap_mode="r")}
        with np.load(folder / "labels.npz") as labels:
            arrays.update({name: labels[name] for name in labels.files})
    except FileNotFoundError:
        return None  # not cached, or evicted while we read it
    _touch(folder)
    return {"meta": meta, **arrays}


def _touch(folder: Path) -> None:
    try:
        (folder / _LAST_USED).touch()
    except OSError:
        pass  # a read-only cache still serves; it is only evicted sooner


def last_used(folder: Path) -> float:
    """When the entry was last loaded (or written)."""
    for candidate in (folder / _LAST_USED, folder / "meta.json"):
        try:
            return candidate.stat().st_mtime
        except OSError:
            continue
    return 0.0


def limit_bytes() -> int:
    raw = os.environ.get(LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_LIMIT_MB * 1024 * 1024
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:
        raise DataError(f"{LIMIT_ENV} is {raw!r}; set it to the dataset cache's size limit in MB "
                        f"(e.g. {DEFAULT_LIMIT_MB}) or unset it.")
    return int(megabytes * 1024 * 1024)


def _size(folder: Path) -> int:
    total = 0
    for entry in os.scandir(folder):
        try:
            total += entry.stat().st_size
        except OSError:
            pass
    return total


def evict(keep: Path, limit: int | None = None) -> list[str]:
    """Remove least recently used entries until the cache fits ``limit`` bytes, never ``keep``; their names."""
    limit = limit_bytes() if limit is None else limit
    root = keep.parent
    entries = [Path(entry.path) for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith(".")]
    sizes = {folder: _size(folder) for folder in entries}
    total = sum(sizes.values())
    evicted = []
    for folder in sorted(entries, key=last_used):
        if total <= limit:
            break
        if folder == keep:
            continue
        doomed = root / f".evicting-{folder.name}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            os.rename(folder, doomed)
        except OSError:
            continue  # another process evicted it first
        shutil.rmtree(doomed, ignore_errors=True)
        total -= sizes[folder]
        evicted.append(folder.name)
    return evicted


def save(name: str, key: str, x: np.ndarray, meta: dict[str, Any], **labels: np.ndarray) -> None:
    """Write x (volumes), the label arrays and metadata atomically."""
    final = entry_dir(name, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    try:
        np.save(staging / "x.npy", np.ascontiguousarray(x, dtype=np.float32))
        np.savez(staging / "labels.npz", **labels)
        (staging / "meta.json").write_text(json.dumps(meta, sort_keys=True))
        (staging / _LAST_USED).touch()
        try:
            os.rename(staging, final)
        except OSError:
            # Another process finished the same entry first; theirs is identical.
            if not (final / "meta.json").exists():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    evict(keep=final)
