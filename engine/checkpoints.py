"""A run's model checkpoints (``best.keras``, ``last.keras``): written atomically, checked before use.

A kill while Keras writes a checkpoint in place left a 0-byte ``best.keras``
behind a store that said "best epoch 1". So a checkpoint is written to a
temporary file in the same folder and renamed over the old one (a rename
within a folder is atomic), and nothing offers a checkpoint (download, resume)
without ``problem()`` saying it is whole. The check is a zip check (a
``.keras`` file is a zip holding the config and the weights), so the
dashboard can run it without TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

BEST = "best.keras"
LAST = "last.keras"
# What every Keras 3 ``.keras`` archive holds.
_MEMBERS = ("config.json", "model.weights.h5")


def save(model, path: Path) -> None:
    """``model.save(path)`` through a temporary file and an atomic rename."""
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def duplicate(source: Path, path: Path) -> None:
    """``path`` becomes a copy of the checkpoint ``source`` (atomically), without serialising the model again.

    A hard link where the file system has them: ``source`` is later replaced by a rename, which leaves
    this link's content as it was. A byte copy otherwise.
    """
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def problem(path: Path) -> str | None:
    """Why the checkpoint at ``path`` cannot be loaded ("is missing", "is empty (0 bytes)",
    "is damaged (...)"), or None when it is whole."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "is missing"
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if size == 0:
        return "is empty (0 bytes)"
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [member for member in _MEMBERS if member not in names]
            if missing:
                return f"is damaged (no {', '.join(missing)} inside)"
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as e:
        return f"is damaged ({e})"
    return f"is damaged ({bad} fails its checksum)" if bad else None


def usable(path: Path) -> bool:
    return problem(path) is None


__all__ = ["BEST", "LAST", "duplicate", "problem", "save", "usable"]
