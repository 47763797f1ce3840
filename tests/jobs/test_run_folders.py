"""Run folders: readers never create them; a worker that cannot be started names the path it could not write."""

from __future__ import annotations

from engine import jobs, paths
from engine.jobs import control
from engine.runs import RunStatus
from tests.jobs.helpers import tiny_config


def test_run_dir_creates_only_when_asked(jobs_lab):
    missing = paths.run_dir(7, create=False)
    assert not missing.exists() and missing.name == "run-00007"
    assert paths.run_dir(7).is_dir()  # writers keep today's behaviour


def test_log_tail_of_a_deleted_run_folder_does_not_create_it(store):
    run_id = store.create_run(tiny_config(), status=RunStatus.FAILED)
    folder = paths.run_dir(run_id, create=False)
    assert jobs.log_tail(run_id) == ""
    assert not folder.exists()


def test_a_worker_that_cannot_write_its_folder_names_the_path(store):
    run_id = store.create_run(tiny_config(), status=RunStatus.QUEUED)
    folder = paths.run_dir(run_id, create=False)
    # A regular file where the run folder belongs: unwritable for root too (chmod is not).
    folder.write_text("not a folder")
    assert control.schedule(store) == []
    run = store.get_run(run_id)
    assert run.status == RunStatus.FAILED
    assert str(folder) in run.error
    assert "Python environment" not in run.error
    assert "CONV3D_LAB_HOME" in run.error  # what to do about it

