"""A run whose folder is deleted while it trains ends failed with a sentence that names no server path;
the detail (the traceback with the paths) is in the operator's log only, never in the store."""

from __future__ import annotations

import shutil

from engine import jobs, paths
from engine.errors import os_error_sentence
from engine.runs import RunStatus
from tests import fake_worker
from tests.jobs.helpers import tiny_config, wait_ended, wait_for


def test_a_run_folder_deleted_while_training_ends_with_a_sentence(store, jobs_lab, monkeypatch):
    monkeypatch.setenv(fake_worker.BATCH_DELAY_ENV, "0.3")  # 6 batches an epoch: about 2 s per epoch
    run_id = jobs.launch(tiny_config(epochs=4))
    wait_for(lambda: store.get_run(run_id).epochs_done >= 1, 240, "the first epoch")
    shutil.rmtree(paths.run_dir(run_id, create=False))
    run = wait_ended(store, run_id, 240)
    assert run.status == RunStatus.FAILED, run
    assert run.error == os_error_sentence(FileNotFoundError(2, "x"), run_id, folder_exists=False), run.error
    assert str(jobs_lab) not in run.error and "/" not in run.error and "FileNotFoundError" not in run.error
    assert run.traceback is None
    for event in store.get_events(run_id):
        assert str(jobs_lab) not in event["message"], event
    assert run.epochs_done >= 1  # the epochs recorded before are kept
    assert not paths.run_dir(run_id, create=False).exists()  # nothing brought the folder back


def test_other_os_errors_are_sentences_without_paths():
    full = os_error_sentence(OSError(28, "No space left on device", "/srv/lab/run-00003/last.keras"), 3, True)
    assert "disk is full" in full and "/srv" not in full
    other = os_error_sentence(PermissionError(13, "Permission denied", "/srv/lab/run-00003"), 3, True)
    assert "Permission denied" in other and "/srv" not in other and "operator's log" in other
