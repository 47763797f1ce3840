"""The remedies tests run workers: the jobs tests' clean lab (one slot, no standby, no orphan process)."""

from tests.jobs.conftest import jobs_lab, store  # noqa: F401
