"""``python -m engine group``: each fold's training accuracy at its best epoch and at its last epoch, so that
memorisation after the best epoch shows (issue 24)."""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from engine.config import RunConfig
from engine.store import open_store
from engine.sweeps import summary
from tests.fake_runs import fake_run

# (training accuracy at epochs 1-5) per fold; the best epoch (by val_loss) is 2, the last is 5.
TRAIN_ACCURACY = ((0.70, 0.93, 0.97, 0.99, 1.00), (0.68, 0.91, 0.96, 0.98, 0.99))


def _group(store, group: str = "cv-last01") -> list[int]:
    ids = []
    for fold, accuracies in enumerate(TRAIN_ACCURACY):
        config = RunConfig()
        config.data.folds, config.data.fold = 2, fold
        curves = {"loss": [1.0 - accuracy for accuracy in accuracies], "accuracy": list(accuracies),
                  "val_accuracy": [0.55] * 5, "val_loss": [0.6 if epoch == 2 else 0.7 + epoch / 10 for epoch in range(1, 6)]}
        ids.append(fake_run(store, config=config, group=group, curves=curves))  # the best epoch is 2 (val_loss)
    return ids


def test_group_shows_the_training_accuracy_at_the_best_and_the_last_epoch(lab_home, capsys):
    store = open_store()
    ids = _group(store)
    assert main(["group", "cv-last01", "--json"]) == 0
    [configuration] = json.loads(capsys.readouterr().out)["configurations"]
    for fold, accuracies in zip(configuration["folds"], TRAIN_ACCURACY):
        assert fold["best_epoch"] == 2 and fold["metrics"]["accuracy"] == pytest.approx(accuracies[1])
        assert fold["last_epoch"] == 5 and fold["last_metrics"]["accuracy"] == pytest.approx(accuracies[4])
    last = configuration["summary"]["accuracy" + summary.LAST_SUFFIX]
    assert last["mean"] == pytest.approx(0.995) and last["n"] == 2
    assert configuration["summary"]["accuracy"]["mean"] == pytest.approx(0.92)

    assert main(["group", "cv-last01"]) == 0
    text = capsys.readouterr().out
    assert text.count("best epoch 2:") == 2 and text.count("last epoch 5:") == 2
    first_last = next(line for line in text.splitlines() if "last epoch 5:" in line)
    assert "accuracy 1.0000" in first_last and "val_accuracy 0.5500" in first_last
    assert "accuracy @ last epoch" in text and ids
