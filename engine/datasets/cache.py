"""On-disk cache of generated and preprocessed datasets, read back through memory maps.

A dataset is cached by a fingerprint of its source and every parameter that
shapes it, so a changed knob never reads stale volumes. Files are written into
a temporary folder and renamed into place, so a crash (or two workers building
the same dataset at once) never leaves a half-written cache entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from engine import paths

# Bump when a generator changes its output, so old caches are not reused.
CACHE_VERSION = 1


def fingerprint(name: str, options: dict[str, Any]) -> str:
    payload = json.dumps({"name": name, "options": options, "version": CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def entry_dir(name: str, key: str) -> Path:
    return paths.data_cache_dir() / f"{name}-{key}"


def load(name: str, key: str) -> dict[str, Any] | None:
    """The cached arrays (x as a read-only memory map) and metadata, or None when not cached."""
    folder = entry_dir(name, key)
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    arrays = {"x": np.load(folder / "x.npy", mmap_mode="r")}
    with np.load(folder / "labels.npz") as labels:
        arrays.update({name: labels[name] for name in labels.files})
    return {"meta": meta, **arrays}


def save(name: str, key: str, x: np.ndarray, meta: dict[str, Any], **labels: np.ndarray) -> None:
    """Write x (volumes), the label arrays and metadata atomically."""
    final = entry_dir(name, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    try:
        np.save(staging / "x.npy", np.ascontiguousarray(x, dtype=np.float32))
        np.savez(staging / "labels.npz", **labels)
        (staging / "meta.json").write_text(json.dumps(meta, sort_keys=True))
        try:
            os.rename(staging, final)
        except OSError:
            # Another process finished the same entry first; theirs is identical.
            if not (final / "meta.json").exists():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
