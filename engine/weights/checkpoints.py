"""A run's model checkpoints (``best.keras``, ``last.keras``): written atomically, checked before use.

A kill while Keras writes a checkpoint in place left a 0-byte ``best.keras``
behind a store that said "best epoch 1". So a checkpoint is written to a
temporary file in the same folder and renamed over the old one (a rename
within a folder is atomic), and nothing offers a checkpoint (download, resume)
without ``problem()`` saying it is whole. The check is a zip check (a
``.keras`` file is a zip holding the config and the weights), so the
dashboard can run it without TensorFlow.

Each checkpoint also names the epoch whose end it holds (``conv3d_lab.json``
inside the archive, written before the rename, so the two never disagree):
the recorder writes ``last.keras`` by elapsed time rather than every epoch
(engine/training/callbacks.py), and a resume continues after the epoch
``saved_epoch()`` reads, not after the last one the store recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

BEST = "best.keras"
LAST = "last.keras"
# What every Keras 3 ``.keras`` archive holds.
_MEMBERS = ("config.json", "model.weights.h5")
# The lab's own member of the archive: {"epoch": n} (Keras ignores members it does not know).
LAB_MEMBER = "conv3d_lab.json"


def save(model, path: Path, *, epoch: int | None = None) -> None:
    """``model.save(path)`` through a temporary file and an atomic rename; ``epoch`` is recorded inside."""
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(temporary)
        if epoch is not None:
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(LAB_MEMBER, json.dumps({"epoch": int(epoch)}))
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


def saved_epoch(path: Path) -> int | None:
    """The epoch whose end the checkpoint at ``path`` holds; None when it does not say (written before the
    lab recorded it, or unreadable: ``problem()`` tells which)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if LAB_MEMBER not in archive.namelist():
                return None
            epoch = json.loads(archive.read(LAB_MEMBER)).get("epoch")
    except (OSError, zipfile.BadZipFile, ValueError, AttributeError):
        return None
    return int(epoch) if isinstance(epoch, int) and epoch >= 0 else None


def resume_epoch(run_dir: Path, epochs_done: int | None) -> int:
    """The epoch a resume continues after: the one the run's ``last.keras`` holds (written by elapsed time,
    so it may trail the store's ``epochs_done``), or ``epochs_done`` for a checkpoint that does not say."""
    done = int(epochs_done or 0)
    saved = saved_epoch(run_dir / LAST) if done else None
    return done if saved is None else min(saved, done)


__all__ = ["BEST", "LAB_MEMBER", "LAST", "duplicate", "problem", "resume_epoch", "save", "saved_epoch", "usable"]
