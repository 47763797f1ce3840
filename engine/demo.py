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

from collections.abc import Sequence

from engine import actors, datasets, settings
from engine.config import RunConfig
from engine.errors import LabError
from engine.runs import ACTIVE_STATUSES, RunRecord
from engine.store import RunStore


class DemoLimitError(LabError):
    """A launch or upload that would exceed one of the hosted demo's caps."""


class NotYourRunError(LabError):
    """A change to a run that another session or person launched (hosted demo)."""


def check_launch(configs: Sequence[RunConfig], owner: str | None, store: RunStore,
                 caps: settings.DemoCaps | None = None) -> None:
    """Raise ``DemoLimitError`` when queueing ``configs`` for ``owner`` would exceed a cap."""
    caps = caps or settings.demo_caps()
    for config in configs:
        _check_config(config, caps)
    active = store.list_runs(statuses=ACTIVE_STATUSES)
    new = len(configs)
    mine = sum(1 for run in active if owner is not None and run.owner == owner)
    if mine + new > caps.max_active_runs_per_session:
        raise DemoLimitError(
            f"This demo lets one session have at most {caps.max_active_runs_per_session} runs queued or running; "
            f"you have {mine} and this launch adds {new}. Wait for one to end or stop one, then launch again."
        )
    if len(active) + new > caps.max_active_runs_total:
        raise DemoLimitError(
            f"This demo runs at most {caps.max_active_runs_total} runs at a time for all visitors together, and "
            f"{len(active)} are queued or running; try again in a few minutes."
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
        f"({caps.max_active_runs_total} for everyone together); uploads up to "
        f"{caps.max_upload_bytes / 1024**2:g} MB; no import from server folders. "
        "Other visitors' runs are shown read-only."
    )


__all__ = ["DemoLimitError", "NotYourRunError", "check_launch", "check_owner", "check_upload", "limits_text"]
