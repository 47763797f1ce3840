"""``RunStore.restore_run``: a run recorded under its own id with its metrics (what ``doctor --store
--rebuild`` does with a run folder), on SQLite and on PostgreSQL, after which new runs get new ids."""

from __future__ import annotations

import pytest

from engine.config import RunConfig
from engine.runs import RunStatus
from engine.store import journal, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, lab_home):
    if request.param == "postgresql":
        request.getfixturevalue("postgres_url")
    return open_store()


def test_a_restored_run_keeps_its_id_record_and_metrics_and_the_next_id_follows(store):
    run_id = store.create_run(RunConfig(name="original"), owner="visitor-a")
    store.log_metrics(run_id, [{"kind": "epoch", "epoch": 1, "name": "val_loss", "value": 0.5},
                               {"kind": "test", "epoch": 1, "name": "accuracy", "value": 0.75}])
    store.transition(run_id, RunStatus.FINISHED, from_statuses=[RunStatus.QUEUED], finished_at=2.0,
                     epochs_done=1, test_metrics={"accuracy": 0.75})
    fields = journal.record_fields(store.get_run(run_id))
    metrics = store.get_metrics(run_id)
    fields["id"] = 40  # as if the database had lost runs 2..40 and this folder is run-00040
    store.restore_run(fields, metrics)
    restored = store.get_run(40)
    assert (restored.name, restored.status, restored.owner, restored.test_metrics) == (
        "original", RunStatus.FINISHED, "visitor-a", {"accuracy": 0.75})
    assert store.epoch_history(40) == store.epoch_history(run_id)
    assert store.create_run(RunConfig()) == 41
    store.restore_run(fields, metrics[:1])  # again: replaces, never duplicates
    assert len(store.get_metrics(40)) == 1
