"""The Sweeps page: start a 6-trial Optuna sweep from widgets, watch it, launch the best, stop another.

The trials run in real worker processes under the fake-worker hook (a made-up
curve, no TensorFlow); the page never trains.
"""

from __future__ import annotations

import re
import time

import pytest

from engine.jobs import processes
from engine.machine.devices import SLOTS_ENV
from engine.runs import ACTIVE_STATUSES, RunStatus
from engine.store import open_store
from engine.sweeps import control
from tests.processes import workspace_processes
from tests import fake_worker


@pytest.fixture
def fake_workers(monkeypatch, lab_home):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "0.3")
    monkeypatch.setenv(fake_worker.FAKE_CURVE_ENV, "1")
    monkeypatch.setenv(SLOTS_ENV, "2")
    yield
    deadline = time.monotonic() + 20
    while workspace_processes(lab_home) and time.monotonic() < deadline:
        processes.reap_children()
        time.sleep(0.2)
    assert not workspace_processes(lab_home)


def _form(at, **values):
    at.selectbox(key="sweeps_dataset").select("shapes3d").run()
    # The dataset's options are the Train page's widgets, not JSON.
    at.number_input(key="sweeps_option_shapes3d_num_samples").set_value(48)
    at.selectbox(key="sweeps_arch").select("tutorial3d")
    at.number_input(key="sweeps_width").set_value(0.25)
    at.number_input(key="sweeps_epochs").set_value(values.get("epochs", 4))
    at.number_input(key="sweeps_batch").set_value(8)
    at.number_input(key="sweeps_trials").set_value(values.get("trials", 6))
    at.number_input(key="sweeps_lr_low").set_value(1e-5)
    at.number_input(key="sweeps_lr_high").set_value(0.5)
    at.number_input(key="sweeps_dropout_high").set_value(0.6)


def test_an_optuna_sweep_from_the_page_runs_on_the_slots_and_its_best_launches(app, page_text, fake_workers):
    at = app("app_pages/sweeps.py")
    assert not at.exception and "No sweeps yet" in page_text(at)
    _form(at)
    at.button(key="sweeps_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    store = open_store()
    [sweep] = store.list_sweeps()
    deadline = time.monotonic() + 120
    while store.get_sweep(sweep.id).finished_at is None:
        assert len(store.list_runs(statuses=[RunStatus.RUNNING])) <= 2
        assert time.monotonic() < deadline, control.status(store, sweep.id)["runs"]
        control.advance_all(store)
        time.sleep(0.1)
    at.run()
    assert not at.exception
    report = control.status(store, sweep.id)
    assert report["trials_done"] == 6 and report["trials_pruned"] >= 1
    assert {run.group for run in store.list_runs()} == {sweep.group}
    assert [m.value for m in at.metric][:3] == ["6/6", "0", str(report["trials_pruned"])]
    assert "Best so far: trial" in page_text(at)
    assert at.get("plotly_chart"), "no parallel coordinates"
    # Ended: the state reads "ended", Stop disabled; the table in the Train / Compare formats.
    assert "ended" in page_text(at) and "in progress" not in page_text(at)
    assert at.button(key="sweeps_stop").disabled
    table = next(d.value for d in at.dataframe if "outcome" in d.value.columns)
    cells = [str(cell) for cell in table.to_numpy().ravel()]
    assert "None" not in cells and "nan" not in cells
    assert not any(re.search(r"\d{7,}", cell) for cell in cells), cells  # 4 significant digits, not 17
    assert store.list_runs()[0].config.data.options["num_samples"] == 48

    at.button(key="sweeps_launch_best").click().run()
    best = store.list_runs(limit=1)[0]
    assert best.group is None and best.config.training.learning_rate == report["best"]["params"]["training.learning_rate"]
    assert at.title[0].value == "Runs"


def test_stop_from_the_page_stops_the_trials_and_queues_no_more(app, fake_workers, monkeypatch):
    monkeypatch.setenv(fake_worker.FAKE_WORKER_ENV, "60")
    at = app("app_pages/sweeps.py")
    _form(at, epochs=2, trials=6)
    at.button(key="sweeps_start").click().run()
    store = open_store()
    [sweep] = store.list_sweeps()
    at.button(key="sweeps_stop").click().run()
    assert not at.exception
    deadline = time.monotonic() + 30
    while store.list_runs(statuses=ACTIVE_STATUSES):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert len(store.list_runs(group=sweep.group)) == 2  # the two trials started on the two slots
    control.advance_all(store)
    assert len(store.list_runs(group=sweep.group)) == 2 and store.get_sweep(sweep.id).stop_requested


def test_the_train_page_launches_a_three_fold_cv_as_one_group(app, make_run):
    make_run("running", epochs_done=1)  # holds the slot: the folds stay queued, no worker starts
    at = app("app_pages/train.py")
    at.number_input(key="train_folds").set_value(3).run()
    at.button(key="train_launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    runs = [run for run in open_store().list_runs() if run.group]
    assert len(runs) == 3 and len({run.group for run in runs}) == 1
    assert sorted(run.config.data.fold for run in runs) == [0, 1, 2]
    assert at.title[0].value == "Runs" and at.query_params["runs"] == ",".join(str(r.id) for r in sorted(runs, key=lambda r: r.id))
