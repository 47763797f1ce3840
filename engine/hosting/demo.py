"""What a hosted demo allows: the caps on a launch and who may change a run.

The dashboard passes the caller's identity (``owner``: a browser session or a
login, ui/access.py) and whether the lab is a demo to ``jobs.launch`` /
``launch_group``, ``stop``, ``resume`` and the curation functions; they call
the checks here, so a cap holds whatever widget (or script) asks. A caller
without an identity (``owner=None``: the CLI on the server) is the operator
and is not checked. Every refusal is a sentence that names the limit, raised
before anything is recorded.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from typing import Any

from engine import actors, datasets, settings
from engine.datasets import imported, uploads
from engine.config import RunConfig
from engine.errors import LabError
from engine.runs import RunRecord
from engine.store import RunStore
from engine.store.base import Admission, AdmissionView

# The window of the daily quota (runs launched, minutes trained), in seconds.
QUOTA_WINDOW_S = 24 * 3600


class DemoLimitError(LabError):
    """A launch or upload that would exceed one of the hosted demo's caps."""


class NotYourRunError(LabError):
    """A change to a run that another session or person launched (hosted demo)."""


def check_launch(configs: Sequence[RunConfig], owner: str | None, store: RunStore,
                 caps: settings.DemoCaps | None = None) -> None:
    """Raise ``DemoLimitError`` when queueing ``configs`` for ``owner`` would exceed a cap, as things stand
    now. ``jobs.launch`` checks the configs here and the counts again with ``admission``, inside the
    transaction that records the runs (a check made before it could be overtaken by a launch in between)."""
    caps = caps or settings.demo_caps()
    for config in configs:
        _check_config(config, caps)
    # The same counts, read in a write transaction that records nothing: an early refusal, before the
    # memory estimate (which may build the model).
    store.create_runs([], owner=owner, admit=admission(owner, len(configs), caps))


def admission(owner: str | None, new: int, caps: settings.DemoCaps | None = None, *,
              action: str = "launch", now: float | None = None) -> Admission:
    """The count checks of a launch or resume of ``new`` runs by ``owner``, for ``RunStore.create_runs`` /
    ``requeue`` to call inside the one transaction that also records them (so N launches at once never
    exceed a cap): active runs per visitor and in total, and the visitor's daily quota."""
    caps = caps or settings.demo_caps()

    def admit(view: AdmissionView) -> None:
        owners = view.active_owners()
        mine = sum(1 for run_owner in owners if owner is not None and run_owner == owner)
        if mine + new > caps.max_active_runs_per_session:
            raise DemoLimitError(
                f"This demo lets one session have at most {caps.max_active_runs_per_session} runs queued or "
                f"running; you have {mine} and this {action} adds {new}. Wait for one to end or stop one, then "
                f"{action} again."
            )
        if len(owners) + new > caps.max_active_runs_total:
            raise DemoLimitError(
                f"This demo runs at most {caps.max_active_runs_total} runs at a time for all visitors together, "
                f"and {len(owners)} are queued or running; try again in a few minutes."
            )
        if owner is not None:
            _check_daily_quota(view, owner, new if action == "launch" else 0, caps,
                               time.time() if now is None else now)

    return admit


def _check_daily_quota(view: AdmissionView, owner: str, new: int, caps: settings.DemoCaps, now: float) -> None:
    """A visitor's runs launched and minutes trained in the last 24 hours (a resume adds no launch)."""
    since = now - QUOTA_WINDOW_S
    runs = view.owner_runs_since(owner, since)
    launched = sum(1 for created_at, _started, _finished in runs if created_at >= since)
    if new and launched + new > caps.max_runs_per_day:
        raise DemoLimitError(
            f"This demo lets one visitor launch at most {caps.max_runs_per_day} runs a day; you have launched "
            f"{launched} in the last 24 hours. Try again tomorrow, or resume one of your runs."
        )
    trained_s = sum(max(0.0, (finished or now) - max(started, since)) for _c, started, finished in runs
                    if started is not None)
    if trained_s >= caps.max_training_minutes_per_day * 60:
        raise DemoLimitError(
            f"This demo trains at most {caps.max_training_minutes_per_day:g} minutes a day per visitor; your "
            f"runs have trained {trained_s / 60:.0f} minutes in the last 24 hours. Try again tomorrow."
        )


def _check_config(config: RunConfig, caps: settings.DemoCaps) -> None:
    epochs = int(config.training.epochs)
    if epochs > caps.max_epochs:
        raise DemoLimitError(f"This demo trains at most {caps.max_epochs} epochs per run; "
                             f"lower the epochs from {epochs} to {caps.max_epochs} or fewer.")
    width = float(config.model.width_multiplier)
    if width > caps.max_width_multiplier:
        raise DemoLimitError(f"This demo allows a width multiplier of at most {caps.max_width_multiplier:g}; "
                             f"lower it from {width:g}.")
    info = datasets.dataset_info(config.data.dataset, config.data.options)  # no data is generated
    edge = max(int(n) for n in info["volume_shape"][:3])
    if edge > caps.max_volume_edge:
        raise DemoLimitError(f"This demo trains on volumes of at most {caps.max_volume_edge} voxels per edge; "
                             f"this dataset's are {edge}. Choose a smaller volume size.")
    samples = int(info["num_samples"])
    if samples > caps.max_samples:
        raise DemoLimitError(f"This demo trains on at most {caps.max_samples:,} samples per run; this dataset "
                             f"has {samples:,}. Lower the number of samples.")


def check_upload(total_bytes: int, caps: settings.DemoCaps | None = None) -> None:
    """Raise ``DemoLimitError`` for an upload larger than the demo's cap."""
    caps = caps or settings.demo_caps()
    if total_bytes > caps.max_upload_bytes:
        raise DemoLimitError(f"This demo accepts uploads of at most {caps.max_upload_bytes / 1024**2:g} MB; "
                             f"these files are {total_bytes / 1024**2:.1f} MB.")


def check_generation(name: str, options: dict[str, Any] | None, caps: settings.DemoCaps | None = None) -> None:
    """Raise ``DemoLimitError`` when building dataset ``name`` with ``options`` inside the dashboard (the Train
    page's "Generate preview") would generate more samples x voxels than the demo allows. A set already in
    the disk cache, or an imported one, is read, not generated."""
    caps = caps or settings.demo_caps()
    info = datasets.dataset_info(name, options)  # no data is generated
    if info.get("cached") or info.get("imported"):
        return
    samples = int(info["num_samples"])
    voxels = samples * math.prod(int(n) for n in info["volume_shape"][:3])
    if voxels > caps.max_generated_voxels:
        raise DemoLimitError(
            f"This demo generates datasets of at most {caps.max_generated_voxels:,} voxels in all (samples x "
            f"voxels per volume); {samples:,} volumes of {'x'.join(map(str, info['volume_shape'][:3]))} are "
            f"{voxels:,}. Lower the number of samples or the volume size."
        )


def zip_limits(caps: settings.DemoCaps | None = None) -> uploads.ZipLimits:
    """The zip caps of an upload on a demo: at most ``max_import_bytes`` unpacked."""
    caps = caps or settings.demo_caps()
    defaults = uploads.ZipLimits()
    return dataclasses.replace(defaults, max_total_bytes=min(defaults.max_total_bytes, caps.max_import_bytes),
                               max_file_bytes=min(defaults.max_file_bytes, caps.max_import_bytes))


def import_allowance(owner: str | None, caps: settings.DemoCaps | None = None) -> int | None:
    """The bytes the next import by ``owner`` may write (``import_dataset(max_bytes=...)``), or a
    ``DemoLimitError`` when the visitor or all visitors together have used their imports or disk.

    A dataset counts for the visitor its manifest names as ``owner`` (the same identity as a run's owner);
    datasets without an owner are the operator's and count for nobody. ``owner=None`` (the operator's
    CLI) is not held to the caps: None.
    """
    if owner is None:
        return None
    caps = caps or settings.demo_caps()
    visitors = []  # (owner, bytes) of every visitor's import
    for name in imported.names():
        try:
            dataset_owner = imported.manifest(name).get("owner")
        except LabError:
            continue
        if dataset_owner is not None:
            visitors.append((dataset_owner, _folder_bytes(imported.folder(name))))
    mine = [size for dataset_owner, size in visitors if dataset_owner == owner]
    if len(mine) >= caps.max_imports_per_visitor:
        raise DemoLimitError(f"This demo keeps at most {caps.max_imports_per_visitor} imported datasets per visitor, "
                             f"and you have {len(mine)}; delete one of yours to import another.")
    if len(visitors) >= caps.max_imports_total:
        raise DemoLimitError(f"This demo keeps at most {caps.max_imports_total} imported datasets for all visitors "
                             "together, and that many are stored; try again later.")
    left_mine = caps.max_import_bytes_per_visitor - sum(mine)
    left_total = caps.max_import_bytes_total - sum(size for _, size in visitors)
    if left_mine <= 0:
        raise DemoLimitError(f"Your imported datasets take {sum(mine) / 1024**2:,.0f} MB, the most this demo keeps "
                             f"per visitor ({caps.max_import_bytes_per_visitor / 1024**2:,.0f} MB); delete one of "
                             "yours to import another.")
    if left_total <= 0:
        raise DemoLimitError(f"The datasets visitors imported take {caps.max_import_bytes_total / 1024**2:,.0f} MB, "
                             "the most this demo keeps; try again later.")
    return min(caps.max_import_bytes, left_mine, left_total)


def _folder_bytes(folder) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def check_owner(run: RunRecord, owner: str | None, demo: bool | None = None, action: str = "change") -> None:
    """Raise ``NotYourRunError`` when, on a demo, ``owner`` did not launch ``run`` (``owner=None``: the operator)."""
    actors.check_may_change(owner, action)  # a read-only share link changes nothing, demo or not
    if owner is None or not settings.demo_mode(demo) or run.owner == owner:
        return
    raise NotYourRunError(f"Run #{run.id} was launched by another visitor of this demo; you can view it but "
                          f"not {action} it. Launch your own run to {action} it.")


def limits_text(caps: settings.DemoCaps | None = None) -> str:
    """The caps in one sentence, for the dashboard's banner."""
    caps = caps or settings.demo_caps()
    return (
        f"This is a shared demo: runs are limited to {caps.max_epochs} epochs, volumes of {caps.max_volume_edge}³ "
        f"voxels, {caps.max_samples:,} samples and a width multiplier of {caps.max_width_multiplier:g}; "
        f"a session may have {caps.max_active_runs_per_session} runs queued or running "
        f"({caps.max_active_runs_total} for everyone together) and launch {caps.max_runs_per_day} runs or train "
        f"{caps.max_training_minutes_per_day:g} minutes a day; uploads up to {caps.max_upload_bytes / 1024**2:g} MB, "
        f"{caps.max_imports_per_visitor} imported datasets per visitor; no import from server folders. "
        "Other visitors' runs are shown read-only."
    )


__all__ = ["DemoLimitError", "NotYourRunError", "admission", "check_generation", "check_launch", "check_owner",
           "check_upload", "import_allowance", "zip_limits", "limits_text"]
