"""User-facing errors.

Every error a person can fix is a ``ValueError`` subclass whose message is a
sentence that says what to change. ``RunFailed`` is different: the run itself
went wrong (NaN loss, out of memory, a crash inside training); it is recorded
against that run with its traceback and everything else carries on.
"""

from __future__ import annotations

import errno

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One invalid field of a run configuration and the sentence that says what to change.

    ``field`` is the dotted path ("training.epochs", "data.options.size",
    "model.architecture", "name"); a form places the message by its first
    part. It is "" for a problem of the configuration as a whole.
    """

    field: str
    message: str

    @property
    def section(self) -> str:
        """"data", "model", "training" or "name" ("" for the whole configuration)."""
        return self.field.split(".", 1)[0]

    def __str__(self) -> str:
        return self.message


class LabError(ValueError):
    """Base class for problems a user can fix; the message is shown as is."""


class ConfigError(LabError):
    """One or more fields of a run configuration are invalid.

    ``problems`` holds one ``Problem`` (field, sentence) per bad field so a form
    can show each next to its widget; ``str(error)`` joins the sentences. A bare
    sentence is taken as a problem of the whole configuration.
    """

    def __init__(self, problems: Iterable[Problem | str]):
        self.problems = [p if isinstance(p, Problem) else Problem("", str(p)) for p in problems]
        super().__init__("Invalid configuration: " + " ".join(p.message for p in self.problems))

    @property
    def messages(self) -> list[str]:
        return [problem.message for problem in self.problems]


class DataError(LabError):
    """A dataset cannot be read, generated or split as asked."""


class StoreError(LabError):
    """The run database (or the workspace that holds it) cannot be opened, read or written.

    The message names the path or URL and what to do (for a damaged SQLite
    file: the newest backup and how to restore it).
    """


class RunNotFound(LabError):
    """A run id that is not in the store."""

    def __init__(self, run_id):
        super().__init__(f"There is no run with id {run_id!r}; `python -m engine runs` lists the runs.")
        self.run_id = run_id


class DuplicateMetrics(LabError):
    """Metric rows for an epoch the run already has: another process is recording the same run."""


class RunStateError(LabError):
    """An action that the run's current status does not allow (e.g. resuming a finished run)."""


class RunFailed(RuntimeError):
    """Training failed (NaN loss, out of memory, an exception); recorded against the run."""

def os_error_sentence(exc: OSError, run_id: int, folder_exists: bool) -> str:
    """The sentence recorded for a run that met an unexpected file-system error: what happened and what to
    do, without the server's paths (a hosted demo shows it to visitors; the detail goes to the
    operator's log, the run's worker.log, only)."""
    if not folder_exists:
        return (f"Run {run_id}'s folder was deleted while it trained, with its checkpoints; the epochs recorded "
                "so far are kept, but it cannot be resumed. Launch it again.")
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        return f"Run {run_id} stopped: the server's disk is full ({reason}). Free space, then resume the run."
    return (f"Run {run_id} stopped on a file-system error on the server ({reason}); the operator's log has the "
            "detail. Resume the run, or launch it again.")
