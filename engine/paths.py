"""Where the lab keeps its files.

``CONV3D_LAB_HOME`` moves the run workspace (database and one folder per run);
``CONV3D_LAB_DB`` selects another database by URL; ``CONV3D_LAB_DATA`` moves the
data folder (``cache/`` and ``imports/`` below it). Each is read at call time so
tests can point them at tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import DataError, StoreError

REPO_ROOT = Path(__file__).resolve().parent.parent


def lab_home() -> Path:
    """The run workspace: ``$CONV3D_LAB_HOME`` or ``<repo>/runs``."""
    return _folder(Path(os.environ.get("CONV3D_LAB_HOME") or REPO_ROOT / "runs"), "CONV3D_LAB_HOME", StoreError)


def _folder(path: Path, variable: str, error: type[Exception]) -> Path:
    """``path``, created if missing; a sentence naming ``variable`` when it cannot be a folder."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:
        raise error(
            f"{variable} points at {path}, which is a file, not a folder; point it at a folder "
            "(it is created if missing) or unset it."
        ) from e
    except OSError as e:
        raise error(
            f"Cannot create the folder {path} ({e.strerror}); point {variable} at a folder you can write to, "
            "or unset it."
        ) from e
    return path


def database_url() -> str:
    """``$CONV3D_LAB_DB`` or a SQLite file ``lab.db`` in the workspace."""
    return os.environ.get("CONV3D_LAB_DB") or f"sqlite:///{lab_home() / 'lab.db'}"


def run_dir(run_id: int, *, create: bool = True) -> Path:
    """The folder for one run's files (model checkpoints, worker log, saliency maps).

    Writers (the worker, the training) get it created; readers (pages, ``log_tail``,
    downloads) and deleting a run pass ``create=False``, so looking at (or deleting)
    a run whose folder is gone does not bring back an empty one.
    """
    path = lab_home() / f"run-{int(run_id):05d}"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def run_folders() -> dict[int, Path]:
    """Every run folder in the workspace (``run-<id>``), by run id; {} when there is no workspace yet."""
    try:
        entries = list(os.scandir(lab_home()))
    except OSError:
        return {}
    return {int(entry.name[4:]): Path(entry.path) for entry in entries
            if entry.name.startswith("run-") and entry.name[4:].isdigit() and entry.is_dir()}


def data_root() -> Path:
    """The data folder: ``$CONV3D_LAB_DATA`` or ``<repo>/data`` (see data/README.md)."""
    return _folder(Path(os.environ.get("CONV3D_LAB_DATA") or REPO_ROOT / "data"), "CONV3D_LAB_DATA", DataError)


def data_cache_dir() -> Path:
    """Generated and preprocessed built-in datasets: ``<data>/cache``."""
    path = data_root() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def imports_dir() -> Path:
    """Imported datasets, one folder per name: ``<data>/imports``."""
    path = data_root() / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path
