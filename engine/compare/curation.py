"""What a person does to finished work: tag, annotate, archive and delete runs.

The Compare and Runs pages and the ``tag`` / ``note`` / ``archive`` /
``delete`` commands all come here, so a tag is cleaned the same way
everywhere and a delete always takes the run's folder with its rows. Tags and
notes are stored as plain text and shown as text (never as Markdown or HTML).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable

from engine import paths
from engine.hosting import demo
from engine.errors import LabError
from engine.runs import RunRecord
from engine.store import RunStore, artefacts

# At most this many tags per run, each at most MAX_TAG_LENGTH characters (they are shown in table cells).
MAX_TAGS = 20
MAX_TAG_LENGTH = 40
MAX_NOTES_LENGTH = 10_000


class RunEditError(LabError):
    """A tag, note, archive or delete request that cannot be done as asked."""


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags as stored: whitespace trimmed and collapsed, empty ones and repeats dropped, order kept.

    A comma separates tags in the dashboard's text field, so a tag cannot hold one.
    """
    cleaned: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise RunEditError(f"A tag must be text, not {tag!r}.")
        for part in tag.split(","):
            part = " ".join(part.split())
            if not part:
                continue
            if len(part) > MAX_TAG_LENGTH:
                raise RunEditError(
                    f"The tag {part[:20]!r}... is {len(part)} characters long; keep tags to {MAX_TAG_LENGTH}."
                )
            if part not in cleaned:
                cleaned.append(part)
    if len(cleaned) > MAX_TAGS:
        raise RunEditError(f"A run can carry at most {MAX_TAGS} tags; this would give it {len(cleaned)}.")
    return tuple(cleaned)


def _check_owner(store: RunStore, run_id: int, owner: str | None, demo_mode: bool | None, action: str) -> None:
    """On a hosted demo, only the session that launched a run changes it (engine/hosting/demo.py)."""
    if owner is not None:
        demo.check_owner(store.get_run(run_id), owner, demo_mode, action)


def set_tags(store: RunStore, run_id: int, tags: Iterable[str], *, owner: str | None = None,
             demo_mode: bool | None = None) -> tuple[str, ...]:
    """Replace the run's tags; returns them as stored."""
    _check_owner(store, run_id, owner, demo_mode, "tag")
    cleaned = clean_tags(tags)
    store.update_run(run_id, tags=list(cleaned))
    return cleaned


def add_tags(store: RunStore, run_id: int, tags: Iterable[str]) -> tuple[str, ...]:
    """Add tags to the run's own (repeats ignored); returns the run's tags as stored."""
    return set_tags(store, run_id, [*store.get_run(run_id).tags, *tags])


def remove_tags(store: RunStore, run_id: int, tags: Iterable[str]) -> tuple[str, ...]:
    drop = set(clean_tags(tags))
    return set_tags(store, run_id, [tag for tag in store.get_run(run_id).tags if tag not in drop])


def set_notes(store: RunStore, run_id: int, notes: str, *, owner: str | None = None,
              demo_mode: bool | None = None) -> str:
    """Replace the run's notes (free text; surrounding whitespace trimmed)."""
    _check_owner(store, run_id, owner, demo_mode, "annotate")
    notes = (notes or "").strip()
    if len(notes) > MAX_NOTES_LENGTH:
        raise RunEditError(f"The notes are {len(notes):,} characters long; keep them under {MAX_NOTES_LENGTH:,}.")
    store.update_run(run_id, notes=notes)
    return notes


def set_archived(store: RunStore, run_id: int, archived: bool = True, *, owner: str | None = None,
                 demo_mode: bool | None = None) -> None:
    """Archive (hide from run lists by default) or bring back a run; nothing else about it changes."""
    _check_owner(store, run_id, owner, demo_mode, "archive")
    store.update_run(run_id, archived=bool(archived))


def check_deletable(run: RunRecord) -> None:
    """Raise ``RunEditError`` with the sentence to show when ``run`` cannot be deleted (it is active)."""
    if run.status.is_active:
        raise RunEditError(
            f"Run #{run.id} is {run.status.label}; stop it first (Stop on the Runs page or "
            f"`python -m engine stop {run.id}`), then delete it."
        )


def delete_run(store: RunStore, run_id: int, *, owner: str | None = None, demo_mode: bool | None = None) -> None:
    """Delete a run that is not queued or running: its rows (metrics, predictions, events) and its folder.

    The rows go first, so a folder that cannot be removed never leaves a run
    in the lists that points at missing files.
    """
    run = store.get_run(run_id)
    if owner is not None:
        demo.check_owner(run, owner, demo_mode, "delete")
    check_deletable(run)
    folder = paths.run_dir(run.id, create=False)
    store.delete_run(run.id)
    if folder.exists():
        try:
            shutil.rmtree(folder)
        except OSError as e:
            raise RunEditError(
                f"Run #{run.id} was removed from the store, but its folder {folder} could not be deleted "
                f"({e.strerror}); delete it by hand."
            ) from e
    artefacts.delete_run(run.id)  # and its copy on the shared root (CONV3D_LAB_ARTIFACTS), when one is set


__all__ = [
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "RunEditError",
    "add_tags",
    "check_deletable",
    "clean_tags",
    "delete_run",
    "remove_tags",
    "set_archived",
    "set_notes",
    "set_tags",
]
