"""The sweeps tests run real worker processes like the jobs tests: the same clean lab and orphan guard."""

from tests.jobs.conftest import jobs_lab, store  # noqa: F401 - fixtures shared with tests/jobs
