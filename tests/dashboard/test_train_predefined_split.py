"""A dataset that brings its own test (and validation) split: the Train form shows those sizes instead of
fractions, and the launched run's config records the share actually used."""

from __future__ import annotations

from engine import datasets
from engine.store import open_store
from tests.datasets.scans import write_medmnist


def test_train_shows_the_datasets_own_split_sizes_and_records_them(app, make_run, fake_probe, tmp_path):
    write_medmnist(tmp_path / "organ3d.npz", sizes=(24, 8, 8), edge=16)
    datasets.import_dataset(tmp_path / "organ3d.npz", "organ")
    busy = make_run("running", epochs_done=1)  # no worker is started for the new run
    at = app("app_pages/train.py")
    at.selectbox(key="train_dataset").select("shapes3d").run()  # a built-in without its own split: fractions
    assert at.number_input(key="train_test_fraction").value == 0.15
    at.selectbox(key="train_dataset").select("organ").run()
    assert not at.exception, [e.value for e in at.exception]
    own = {box.key: box.value for box in at.text_input if box.key.startswith("train_") and "_split_" in box.key}
    assert own == {"train_val_split_organ": "8 samples (the dataset's own)",
                   "train_test_split_organ": "8 samples (the dataset's own)"}
    assert "train_test_fraction" not in [box.key for box in at.number_input]
    at.button(key="train_launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    run = open_store().list_runs(limit=1)[0]
    assert run.id != busy and run.config.data.dataset == "organ"
    assert (run.config.data.val_fraction, run.config.data.test_fraction) == (0.2, 0.2)  # 8 of 40 each
