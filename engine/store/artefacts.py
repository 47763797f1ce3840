"""Run folders on shared storage: ``CONV3D_LAB_ARTIFACTS``, an fsspec root beside the run store.

Unset (the default), a run's files live in ``<lab home>/run-<id>/`` and nothing here does anything.
Set to an fsspec URL (``s3://bucket/lab``, ``gs://bucket/lab``, ``file:///shared/lab``,
``memory://lab`` in tests), the local run folder becomes a working copy of ``<root>/runs/run-<id>/``:

- the writer (the worker, ``python -m engine train``) *publishes* its folder whenever the run's
  folder copy is written (engine/store/journal.py: at the claim, when a checkpoint is written and
  when the run ends, stopped or failed included): the files whose size or time changed since the last
  publish are put, files gone locally are removed from the root, and ``.manifest.json`` (path -> size
  and modification time of each file) is written last, so a reader never trusts a half-published folder;
- a reader on any machine (Inspect, predict, export, resume, the doctor) asks for ``run_folder(id)``:
  the root's manifest is compared with the one it fetched last (kept as ``.artefacts.json`` in the
  local copy), and only the files that differ are fetched, each to a partial file renamed into place.

Keras and the readers need local paths, hence a working copy rather than reads through fsspec. The
root holds files only; the database (``CONV3D_LAB_DB``) stays the source of runs, metrics and
predictions. Errors (an unknown protocol, a missing driver such as s3fs, no credentials, an
unreachable root) come back as one sentence (StoreError) naming ``CONV3D_LAB_ARTIFACTS``.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import paths
from engine.errors import StoreError

ARTIFACTS_ENV = "CONV3D_LAB_ARTIFACTS"
MANIFEST_FILE = ".manifest.json"  # in the root: what the last publish put there
LOCAL_RECORD = ".artefacts.json"  # in the working copy: the root's manifest it matches
RUNS_PREFIX = "runs"
IMPORTS_PREFIX = "imports"  # imported datasets, one folder per name, as in <data>/imports
# Never published: the worker's liveness file (rewritten every few seconds, meaningful on its host only)
# and files being written (journal's and fetch's partial files start with a dot).
SKIPPED_NAMES = frozenset({"heartbeat"})

# Stores of keys rather than folders: nothing to create before a put, and a missing bucket is an error.
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"})

Manifest = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Transfer:
    """What one publish or fetch moved: files and bytes, and the seconds it took."""

    files: int
    bytes: int
    seconds: float


def root_url() -> str | None:
    """``$CONV3D_LAB_ARTIFACTS`` (stripped, without a trailing slash), or None when unset."""
    url = os.environ.get(ARTIFACTS_ENV, "").strip().rstrip("/")
    return url or None


def configured() -> bool:
    return root_url() is not None


def _root() -> tuple[Any, str]:
    """The fsspec filesystem and the root path inside it; StoreError naming the setting when it cannot be."""
    url = root_url()
    if url is None:
        raise StoreError(f"{ARTIFACTS_ENV} is not set; set it to an fsspec URL such as s3://bucket/lab.")
    try:
        import fsspec
        import fsspec.core

        filesystem, root = fsspec.core.url_to_fs(url)
    except ImportError as e:
        raise StoreError(
            f"{ARTIFACTS_ENV}={url!r} needs a driver that is not installed ({e}); install it "
            "(pip install -r requirements-cluster.txt) or point the setting at another root."
        ) from e
    except Exception as e:  # fsspec raises ValueError for an unknown protocol, others for a malformed URL
        raise StoreError(
            f"{ARTIFACTS_ENV}={url!r} is not a usable fsspec URL ({e}); give one such as s3://bucket/lab, "
            "gs://bucket/lab or file:///shared/lab, or unset it."
        ) from e
    return filesystem, root.rstrip("/")


def _object_store(filesystem: Any) -> bool:
    protocols = filesystem.protocol if isinstance(filesystem.protocol, tuple) else (filesystem.protocol,)
    return bool(set(protocols) & OBJECT_STORES)


def _unreachable(action: str, error: Exception) -> StoreError:
    return StoreError(
        f"Could not {action} the artefact root {ARTIFACTS_ENV}={root_url()!r} ({type(error).__name__}: {error}); "
        "check that it exists, that this machine can reach it and has its credentials, or unset the setting."
    )


def run_key(run_id: int) -> str:
    """A run's folder name, the same locally and in the root."""
    return paths.run_dir(run_id, create=False).name


def local_manifest(folder: Path) -> Manifest:
    """Every file below ``folder`` (relative POSIX path -> size and modification time), hidden and
    skipped files left out."""
    found: Manifest = {}
    for path in _files(folder):
        stat = path.stat()
        found[path.relative_to(folder).as_posix()] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return found


def _files(folder: Path) -> Iterator[Path]:
    for current, directories, files in os.walk(folder):
        directories[:] = [name for name in directories if not name.startswith(".")]
        for name in files:
            if not name.startswith(".") and name not in SKIPPED_NAMES:
                yield Path(current) / name


def _read_manifest(filesystem: Any, remote: str) -> Manifest | None:
    try:
        with filesystem.open(posixpath.join(remote, MANIFEST_FILE), "rb") as handle:
            return dict(json.loads(handle.read()))
    except FileNotFoundError:
        return None


def _read_record(folder: Path) -> Manifest:
    try:
        return dict(json.loads((folder / LOCAL_RECORD).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _write_record(folder: Path, manifest: Manifest) -> None:
    partial = folder / f"{LOCAL_RECORD}.{os.getpid()}.partial"
    partial.write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
    os.replace(partial, folder / LOCAL_RECORD)


def publish_folder(folder: Path, key: str, *, mirror: bool = False) -> Transfer:
    """Put what changed in local ``folder`` since its last publish or fetch under ``<root>/<key>/``.

    A merge, not a mirror: only files changed here (against the local record) are put, and only files
    this copy knew and no longer has are removed, so a stale working copy (a dashboard's fetched copy of
    a run that goes on elsewhere) never takes newer files out of the root. ``mirror``: the root's folder
    becomes this one (a dataset written whole by one import, replacing an older one of that name).
    """
    started = time.perf_counter()
    filesystem, root = _root()
    remote = posixpath.join(root, key)
    current, record = local_manifest(folder), _read_record(folder)
    try:
        if not _object_store(filesystem):
            filesystem.makedirs(remote, exist_ok=True)
        published = _read_manifest(filesystem, remote) or {}
        # Changed here since the last sync, or not in the root at all (a root emptied by hand, say).
        changed = [name for name, entry in current.items() if record.get(name) != entry or name not in published]
        removed = (set(published) if mirror else set(record) & set(published)) - set(current)
        moved = 0
        for name in changed:
            target = posixpath.join(remote, name)
            if not _object_store(filesystem):  # s3fs's makedirs would create a missing bucket
                filesystem.makedirs(posixpath.dirname(target), exist_ok=True)
            filesystem.put_file(str(folder / name), target)
            moved += current[name]["size"]
        for name in removed:
            filesystem.rm_file(posixpath.join(remote, name))
        manifest = {name: entry for name, entry in published.items() if name not in removed}
        manifest.update({name: current[name] for name in changed})
        if manifest != published or not published:  # an idle folder costs one small read, no write
            with filesystem.open(posixpath.join(remote, MANIFEST_FILE), "wb") as handle:
                handle.write(json.dumps(manifest, sort_keys=True).encode())
    except StoreError:
        raise
    except Exception as e:
        raise _unreachable(f"publish {key} to", e) from e
    # What this copy holds as synced: a file the root has newer (written elsewhere) keeps its old entry,
    # so the next fetch brings it.
    _write_record(folder, {name: entry for name, entry in current.items() if name in manifest})
    return Transfer(len(changed), moved, time.perf_counter() - started)


def fetch_folder(key: str, folder: Path) -> Transfer | None:
    """Bring local ``folder`` up to date with ``<root>/<key>/``: fetch the files whose manifest entry
    differs from the last fetch (or that are missing locally), remove those the root no longer has.
    None when the root has no such folder (never published, or deleted)."""
    started = time.perf_counter()
    filesystem, root = _root()
    remote = posixpath.join(root, key)
    try:
        published = _read_manifest(filesystem, remote)
        if published is None:
            return None
        fresh = not folder.is_dir()
        if fresh:  # a first fetch is staged beside the folder and renamed into place whole
            final, folder = folder, folder.parent / f".fetching-{folder.name}-{os.getpid()}"
            folder.mkdir(parents=True, exist_ok=True)
        record = {} if fresh else _read_record(folder)
        stale = [name for name, entry in published.items()
                 if record.get(name) != entry or not (folder / name).is_file()]
        moved = 0
        for name in stale:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            try:
                filesystem.get_file(posixpath.join(remote, name), str(partial))
                # The writer's time, so this copy's own manifest matches the record until it changes here.
                mtime_ns = published[name]["mtime_ns"]
                os.utime(partial, ns=(mtime_ns, mtime_ns))
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            moved += published[name]["size"]
        for name in set(record) - set(published):
            (folder / name).unlink(missing_ok=True)
        _write_record(folder, published)
        if fresh:
            os.rename(folder, final)
    except Exception as e:
        if fresh:
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(e, StoreError):
            raise
        raise _unreachable(f"fetch {key} from", e) from e
    return Transfer(len(stale), moved, time.perf_counter() - started)


def delete_folder(key: str) -> None:
    """Remove ``<root>/<key>/`` (nothing when it is not there)."""
    filesystem, root = _root()
    remote = posixpath.join(root, key)
    try:
        if filesystem.exists(remote):
            filesystem.rm(remote, recursive=True)
    except Exception as e:
        raise _unreachable(f"delete {key} from", e) from e


def publish_run(run_id: int) -> Transfer | None:
    """Publish run ``run_id``'s local folder to the root; None when no root is set or there is no folder."""
    folder = paths.run_dir(run_id, create=False)
    if not configured() or not folder.is_dir():
        return None
    return publish_folder(folder, posixpath.join(RUNS_PREFIX, folder.name))


def run_folder(run_id: int) -> Path:
    """Run ``run_id``'s local folder for a reader: with a root set, first brought up to date with the
    root's copy (fetched when it is missing or older). Without a root: ``paths.run_dir(create=False)``."""
    folder = paths.run_dir(run_id, create=False)
    if configured():
        fetch_folder(posixpath.join(RUNS_PREFIX, folder.name), folder)
    return folder


def delete_run(run_id: int) -> None:
    """Remove run ``run_id``'s folder from the root (when one is set)."""
    if configured():
        delete_folder(posixpath.join(RUNS_PREFIX, run_key(run_id)))


def publish_dataset(folder: Path, name: str) -> Transfer | None:
    """Publish imported dataset ``name`` from local ``folder`` (its staging folder, before it is renamed
    into place, or the dataset's own); None when no root is set."""
    if not configured():
        return None
    return publish_folder(folder, posixpath.join(IMPORTS_PREFIX, name), mirror=True)


def dataset_folder(name: str) -> Path:
    """Imported dataset ``name``'s local folder, first brought up to date with the root's copy when one is set."""
    folder = paths.imports_dir() / name
    if configured():
        fetch_folder(posixpath.join(IMPORTS_PREFIX, name), folder)
    return folder


def published_datasets() -> list[str]:
    """The names of the imported datasets on the root ([] when no root is set)."""
    if not configured():
        return []
    filesystem, root = _root()
    try:
        entries = filesystem.ls(posixpath.join(root, IMPORTS_PREFIX), detail=False)
    except FileNotFoundError:
        return []
    except Exception as e:
        raise _unreachable("list the datasets of", e) from e
    return sorted(posixpath.basename(str(entry).rstrip("/")) for entry in entries)


def delete_dataset(name: str) -> None:
    """Remove imported dataset ``name`` from the root (when one is set)."""
    if configured():
        delete_folder(posixpath.join(IMPORTS_PREFIX, name))
