"""User-facing errors.

Every error a person can fix is a ``ValueError`` subclass whose message is a
sentence that says what to change. ``RunFailed`` is different: the run itself
went wrong (NaN loss, out of memory, a crash inside training); it is recorded
against that run with its traceback and everything else carries on.
"""

from __future__ import annotations


class LabError(ValueError):
    """Base class for problems a user can fix; the message is shown as is."""


class ConfigError(LabError):
    """One or more fields of a run configuration are invalid.

    ``problems`` holds one sentence per bad field so a form can show each one
    next to its widget; ``str(error)`` joins them.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("Invalid configuration: " + " ".join(self.problems))


class DataError(LabError):
    """A dataset cannot be read, generated or split as asked."""


class RunNotFound(LabError):
    """A run id that is not in the store."""

    def __init__(self, run_id):
        super().__init__(f"There is no run with id {run_id!r}; `python -m engine runs` lists the runs.")
        self.run_id = run_id


class RunStateError(LabError):
    """An action that the run's current status does not allow (e.g. resuming a finished run)."""


class RunFailed(RuntimeError):
    """Training failed (NaN loss, out of memory, an exception); recorded against the run."""
