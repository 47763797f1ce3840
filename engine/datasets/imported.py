"""Imported datasets on disk: ``<data>/imports/<name>/`` with x.npy, labels.npz and manifest.json.

x.npy is float32 (N, D, H, W, C), read back as a read-only memory map like the
built-ins' cache; labels.npz holds y, the split codes and (when any) the groups;
manifest.json records the source, the reader, the preprocessing, each sample's
source path, label, group and predefined split, what was skipped and why, and its
``owner``: the dashboard identity that imported it (the same id a run's owner
carries, ui/access.py), or None when the operator imported it from the CLI. On a
hosted demo only the owner may delete or replace a dataset (``check_owner``);
the operator's CLI (actor None) always may, and the operator's datasets are
read-only to visitors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from engine import actors, paths, settings
from engine import positive_class as positive
from engine.errors import DataError, LabError
from engine.store import artefacts

MANIFEST = "manifest.json"


class NotYourDatasetError(LabError):
    """A delete or replace of a dataset that another visitor (or the operator) imported (hosted demo)."""
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,60}")
NAME_RULE = "a dataset name is 1 to 60 letters, digits, '-' or '_'"


def validate_name(name: str, builtin_names: list[str]) -> str:
    """``name`` if it may name an imported dataset; DataError stating the rule otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        shown = repr(name)[:80] if isinstance(name, str) else type(name).__name__
        raise DataError(f"The name {shown} cannot be used: {NAME_RULE}.")
    if name.casefold() in {builtin.casefold() for builtin in builtin_names}:
        raise DataError(f"The name {name!r} is a built-in dataset's; choose another name.")
    return name


def folder(name: str) -> Path:
    """The dataset's folder; with CONV3D_LAB_ARTIFACTS set, first fetched from the shared root when it is
    missing or older here (engine/store/artefacts.py)."""
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return artefacts.dataset_folder(name)
    return paths.imports_dir() / name


def names() -> list[str]:
    """Imported datasets, sorted; unfinished imports (hidden staging folders) are not listed. With a shared
    root, the datasets imported on other machines are fetched first."""
    for name in artefacts.published_datasets():
        folder(name)
    root = paths.imports_dir()
    return sorted(
        entry.name for entry in root.iterdir()
        if not entry.name.startswith(".") and NAME_PATTERN.fullmatch(entry.name) and (entry / MANIFEST).is_file()
    )


def exists(name: str) -> bool:
    return isinstance(name, str) and bool(NAME_PATTERN.fullmatch(name)) and (folder(name) / MANIFEST).is_file()


def manifest(name: str) -> dict[str, Any]:
    path = folder(name) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"The imported dataset {name!r} cannot be read ({e}); delete it and import it again.") from e


def info(name: str) -> dict[str, Any]:
    """The same keys as a built-in's dataset_info, plus what the import recorded."""
    recorded = manifest(name)
    return {
        "name": name,
        "title": name,
        "description": (
            f"Imported from {recorded['source']['name']} ({recorded['reader']['format']}): "
            f"{recorded['num_samples']} samples, {len(recorded['class_names'])} classes."
        ),
        "num_classes": len(recorded["class_names"]),
        "class_names": list(recorded["class_names"]),
        "positive_class": positive_class_of(recorded),
        "volume_shape": list(recorded["volume_shape"]),
        "default_options": {},
        "options": {},
        "cached": True,
        "imported": True,
        "num_samples": recorded["num_samples"],
        "class_counts": recorded["class_counts"],
        "source": recorded["source"],
        "owner": recorded.get("owner"),
        "reader": recorded["reader"],
        "preprocessing": recorded["preprocessing"],
        "value_range": recorded.get("value_range"),  # of the voxels as imported (older imports: None)
        "modality": _most_common(sample.get("modality") for sample in recorded.get("samples", [])),
        "spacings": [sample["spacing"] for sample in recorded.get("samples", []) if sample.get("spacing")],
        "splits": recorded["splits"],
        "num_groups": recorded["num_groups"],
        "fingerprint": recorded["fingerprint"],
        "created_at": recorded["created_at"],
    }


def _most_common(values) -> str | None:
    """The most frequent of ``values`` that is not None (e.g. the DICOM Modality of most samples), else None."""
    counts = Counter(value for value in values if value)
    return counts.most_common(1)[0][0] if counts else None


def positive_class_of(recorded: dict[str, Any]) -> str | None:
    """The positive class a manifest records (imports from before it was recorded: guessed from the names)."""
    class_names = [str(name) for name in recorded["class_names"]]
    chosen = recorded.get("positive_class")
    if len(class_names) != 2:
        return None
    return chosen if chosen in class_names else positive.guess(class_names)


def set_positive_class(name: str, class_name: str) -> None:
    """Record ``class_name`` as the positive class in the manifest (written whole, then renamed into place)."""
    recorded = manifest(name)
    sentence = positive.problem(recorded["class_names"], class_name, field="The positive class")
    if sentence:
        raise DataError(sentence)
    recorded["positive_class"] = str(class_name)
    path = folder(name) / MANIFEST
    staging = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(recorded, indent=1), encoding="utf-8")
    os.replace(staging, path)
    artefacts.publish_dataset(folder(name), name)
    os.utime(paths.imports_dir())  # the dashboard's catalog is keyed on the imports folder's time


def group_names(recorded: dict[str, Any], groups: np.ndarray | None) -> list[str] | None:
    """The name of each group code of an import: the group its samples were given (labels CSV column or DICOM
    PatientID, kept in the manifest's samples); a sample without one stands alone as "sample N"."""
    samples = recorded.get("samples") or []
    if groups is None or len(samples) != len(groups):
        return None
    names: dict[int, str] = {}
    for index, (code, sample) in enumerate(zip(np.asarray(groups).tolist(), samples)):
        group = sample.get("group")
        names.setdefault(int(code), str(group) if group is not None else f"sample {index}")
    if set(names) != set(range(len(names))):
        return None
    return [names[code] for code in range(len(names))]


def load(name: str) -> dict[str, Any]:
    """x (read-only memory map), y, groups (or None), split codes and the manifest."""
    recorded = manifest(name)
    root = folder(name)
    x = np.load(root / "x.npy", mmap_mode="r")
    with np.load(root / "labels.npz", allow_pickle=False) as labels:
        arrays = {key: labels[key] for key in labels.files}
    return {"manifest": recorded, "x": x, "y": arrays["y"], "groups": arrays.get("groups"), "split": arrays["split"]}


def owner(name: str) -> str | None:
    """Who imported ``name`` (None: the operator, or an import made before owners were recorded)."""
    return manifest(name).get("owner")


def may_change(name: str, actor: str | None, demo_mode: bool | None = None) -> bool:
    """Whether ``actor`` may delete or replace ``name`` (see ``check_owner``)."""
    try:
        check_owner(name, actor, demo_mode)
    except LabError:
        return False
    return True


def check_owner(name: str, actor: str | None, demo_mode: bool | None = None, action: str = "delete") -> None:
    """Raise when ``actor`` may not delete or replace ``name``: a share link's session never may; on a
    hosted demo only the visitor who imported it may (``actor=None``, the operator's CLI, always may)."""
    actors.check_may_change(actor, action)
    if actor is None or not settings.demo_mode(demo_mode):
        return
    recorded = owner(name)
    if recorded == actor:
        return
    who = "the lab's operator" if recorded in (actors.OPERATOR, "operator") else "another visitor of this demo"
    raise NotYourDatasetError(f"The dataset {name} was imported by {who}; you can train on it but not {action} it. "
                              "Import your own copy under another name.")


def delete(name: str, actor: str | None = None, demo_mode: bool | None = None) -> None:
    """Remove an imported dataset (renamed away first, so a reader never sees half of it); on a hosted
    demo only its owner may (``check_owner``)."""
    if not exists(name):
        listed = ", ".join(names()) or "none"
        raise DataError(f"There is no imported dataset named {str(name)[:80]!r}; imported datasets: {listed}.")
    check_owner(name, actor, demo_mode, "delete")
    trash = Path(tempfile.mkdtemp(prefix=".deleting-", dir=paths.imports_dir()))
    os.rename(folder(name), trash / name)
    shutil.rmtree(trash, ignore_errors=True)
    artefacts.delete_dataset(name)
