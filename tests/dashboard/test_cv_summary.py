"""One number for a cross-validation group: Runs, Compare and ``python -m engine group`` agree, and a
fraction's interval stays within [0, 1] (issue 20, item 6)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from cli_in_process import run_cli
from tests.fake_runs import fake_run, tiny_config

# val_accuracy at the best epoch (epoch 2) of each fold: the t-interval of their mean reaches past 1.
FOLD_ACCURACY = (0.95, 0.99, 0.80)


def _cv_group(store, group: str = "cv-test01") -> list[int]:
    ids = []
    for fold, accuracy in enumerate(FOLD_ACCURACY):
        config = tiny_config(f"cv fold {fold + 1}/3", epochs=2)
        config.data.folds, config.data.fold = 3, fold
        losses, accuracies = [0.9, 0.5 + fold / 10], [accuracy - 0.1, accuracy]  # the best epoch is 2 (val_loss)
        ids.append(fake_run(store, config=config, group=group, curves={
            "loss": losses, "val_loss": losses, "accuracy": accuracies, "val_accuracy": accuracies}))
    return ids


def _expected() -> tuple[float, float, float]:
    values = np.array(FOLD_ACCURACY)
    mean, std = values.mean(), values.std(ddof=1)
    half = stats.t.ppf(0.975, len(values) - 1) * std / np.sqrt(len(values))
    assert mean + half > 1  # the raw t-interval is impossible: the lab must clip it
    return mean, std, mean - half


def test_runs_compare_and_the_cli_show_the_same_mean_std_and_interval(app, store, capsys):
    ids = _cv_group(store)
    mean, std, low = _expected()
    expected_text = f"{mean:.4f} ± {std:.4f}"
    expected_interval = f"{low:.4f}–1.0000 (clipped to [0, 1])"

    # python -m engine group --json
    code, out, _ = run_cli(capsys, "group", "cv-test01", "--json")
    assert code == 0
    [configuration] = json.loads(out)["configurations"]
    cli = configuration["summary"]["val_accuracy"]
    assert cli["mean"] == pytest.approx(mean) and cli["std"] == pytest.approx(std)
    assert cli["low"] == pytest.approx(low) and cli["high"] == 1.0 and cli["clipped"] is True
    assert [f["fold_label"] for f in configuration["folds"]] == ["1/3", "2/3", "3/3"]
    for name, estimate in configuration["summary"].items():  # every fraction's interval within [0, 1]
        if "accuracy" in name:
            assert 0.0 <= estimate["low"] <= estimate["high"] <= 1.0
    # The text form numbers folds 1/3..3/3 as the pages do and prints the same figures.
    code, out, _ = run_cli(capsys, "group", "cv-test01")
    assert "fold 1/3" in out and "fold 3/3" in out and "fold 0" not in out
    assert f"{expected_text}  (95% CI {expected_interval})" in out

    # The Runs page: the group's summary without going through Compare.
    at = app("app_pages/runs.py")
    table = next(d.value for d in at.dataframe if "mean ± std" in d.value.columns)
    row = table[table["metric"] == "val_accuracy"].iloc[0]
    assert row["group"] == "cv-test01" and row["runs"] == "3/3 finished"
    assert row["mean ± std"] == expected_text and row["95% CI"] == expected_interval

    # Compare, grouped by a field the three folds share.
    at = app("app_pages/compare.py", runs=",".join(map(str, ids)), group="data.folds", result="val_accuracy")
    summary = next(d.value for d in at.dataframe if "95% CI" in d.value.columns)
    assert summary["val_accuracy @ best"].iloc[0] == expected_text
    assert summary["95% CI"].iloc[0] == expected_interval


def test_lr_find_runs_are_hidden_from_runs_until_asked_for(app, store, make_run):
    shown = make_run("finished", epochs_done=2, name="a training run")
    hidden = make_run("finished", epochs_done=0, name="lr-find shapes3d tutorial3d")
    store.update_run(hidden, tags=["lr-find"])
    at = app("app_pages/runs.py")
    table = next(d.value for d in at.dataframe if "epoch" in d.value.columns)
    assert list(table["id"]) == [shown]
    at.toggle(key="runs_show_lr_find").set_value(True).run()
    table = next(d.value for d in at.dataframe if "epoch" in d.value.columns)
    assert sorted(table["id"]) == sorted([shown, hidden])


def test_folds_are_numbered_from_one_in_the_config_table_too(store):
    from engine import compare

    ids = _cv_group(store)
    table, _ = compare.config_table(compare.load(store, ids).runs)
    assert table.loc["data.fold"].tolist() == ["1/3", "2/3", "3/3"]
    frame = compare.hyperparameter_frame(compare.load(store, ids), "val_accuracy")
    assert frame["data.fold"].tolist() == [1, 2, 3]
