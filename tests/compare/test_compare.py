"""engine.compare and engine.compare.curation on synthetic runs in a real store (no training)."""

from __future__ import annotations

import json
import sqlite3
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import compare, paths
from engine.compare import curation
from tests.fake_runs import compare_run, synthetic_config
from engine.runs import RunStatus
from engine.store import migrations, open_store

FIXTURES = Path(__file__).resolve().parents[1] / "store" / "fixtures"


@pytest.fixture
def store(lab_home):
    return open_store()


def _runs(store, count=6, epochs=30):
    return [compare_run(store, synthetic_config(index, epochs), seed=index) for index in range(count)]


# ------------------------------------------------------------------ store
def test_schema_step_4_adds_tags_notes_archived_and_num_params_to_an_old_database(tmp_path):
    path = tmp_path / "lab.db"
    shutil.copy(FIXTURES / "lab-before-schema-version.db", path)
    store = open_store(f"sqlite:///{path}")
    assert migrations.LATEST_VERSION >= 4
    run = store.get_run(1)
    assert (run.tags, run.notes, run.archived, run.num_params) == ((), "", False, None)
    store.update_run(1, tags=["baseline"], notes="first try", archived=True, num_params=42)
    run = store.get_run(1)
    assert (run.tags, run.notes, run.archived, run.num_params) == (("baseline",), "first try", True, 42)
    assert [r.id for r in store.list_runs(archived=False)] == [5, 4, 3, 2]
    assert [r.id for r in store.list_runs(archived=True)] == [1]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(migrations.LATEST_VERSION,)]


def test_epoch_histories_reads_many_runs_in_one_query(store):
    import sqlalchemy as sa

    ids = _runs(store, count=3, epochs=5)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(store.engine, "before_cursor_execute", listener)
    try:
        histories = store.epoch_histories(ids)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", listener)
    assert len([s for s in statements if "FROM metrics" in s]) == 1
    for run_id in ids:
        expected = store.epoch_history(run_id)
        assert [{k: v for k, v in row.items() if k != "_wall_time"} for row in histories[run_id]] == expected
        wall = {row["epoch"]: row["wall_time"] for row in store.get_metrics(run_id, kind="epoch")}
        assert [row["_wall_time"] for row in histories[run_id]] == [wall[e] for e in sorted(wall)]


# ---------------------------------------------------------------- results
def test_best_epoch_values_equal_the_extremes_of_the_stored_histories(store):
    ids = _runs(store, count=4, epochs=40)
    config = synthetic_config(9, 40)
    config.training.monitor = "val_loss"
    loss_run = compare_run(store, config, seed=9)
    comparison = compare.load(store, [*ids, loss_run])
    summary = compare.summary_frame(comparison, "val_accuracy", "best").set_index("run id")
    for run_id in [*ids, loss_run]:
        history = store.epoch_history(run_id)
        monitor = store.get_run(run_id).monitor
        values = np.array([row[monitor] for row in history])
        extreme = values.min() if monitor == "val_loss" else values.max()
        best = int(np.flatnonzero(values == extreme)[0]) + 1
        assert summary.loc[run_id, "best value"] == pytest.approx(extreme)
        assert summary.loc[run_id, "best epoch"] == best == store.get_run(run_id).best_epoch
        assert summary.loc[run_id, "val_accuracy @ best"] == pytest.approx(history[best - 1]["val_accuracy"])
    last = compare.summary_frame(comparison, "val_accuracy", "last").set_index("run id")
    assert last.loc[ids[0], "val_accuracy @ last"] == pytest.approx(store.epoch_history(ids[0])[-1]["val_accuracy"])


def test_summary_has_test_metrics_parameters_and_throughput(store):
    run_id = _runs(store, count=1, epochs=10)[0]
    row = compare.summary_frame(compare.load(store, [run_id]), "val_accuracy").iloc[0]
    from engine.evaluation import evaluate_run

    evaluation = evaluate_run(store, run_id, "test")
    assert row["test balanced accuracy"] == pytest.approx(evaluation.balanced_accuracy)
    assert row["test sensitivity"] == pytest.approx(evaluation.per_class[1]["recall"])
    assert row["test specificity"] == pytest.approx(evaluation.per_class[1]["specificity"])
    assert row["test accuracy"] == store.get_run(run_id).test_metrics["accuracy"]
    assert row["parameters"] == 123_456 and row["epochs"] == 10
    history = store.epoch_history(run_id)
    assert row["samples/s"] == pytest.approx(np.mean([r["samples_per_s"] for r in history]))


def test_group_statistics_equal_numpy_mean_and_sample_std(store):
    ids = _runs(store, count=8, epochs=20)  # learning rates: 1e-4 for runs 0-3, 3e-4 for runs 4-7
    comparison = compare.load(store, ids)
    frame = compare.summary_frame(comparison, "val_accuracy", "best", group_by="training.learning_rate")
    assert list(frame["runs"]) == [4, 4]
    for group_index, members in enumerate((ids[:4], ids[4:])):
        per_run = compare.summary_frame(compare.load(store, members), "val_accuracy", "best")
        for column in ("val_accuracy @ best", "best value", "test accuracy", "wall time (s)"):
            assert frame[column][group_index] == pytest.approx(np.mean(per_run[column]))
            assert frame[f"{column} std"][group_index] == pytest.approx(np.std(per_run[column], ddof=1))
        result = frame["val_accuracy @ best"][group_index]
        assert 0.0 <= frame["val_accuracy @ best low"][group_index] <= result
        assert result <= frame["val_accuracy @ best high"][group_index] <= 1.0
    # The curve band: mean and std over the runs at each epoch.
    series = compare.curve_series(comparison, "accuracy", training=False, group_by="training.learning_rate")
    assert [s.run_ids for s in series] == [tuple(ids[:4]), tuple(ids[4:])]
    stacked = np.array([[row["val_accuracy"] for row in store.epoch_history(i)] for i in ids[:4]])
    np.testing.assert_allclose(series[0].y, stacked.mean(axis=0))
    np.testing.assert_allclose(series[0].std, stacked.std(axis=0, ddof=1))


def test_a_group_of_one_run_is_shown_as_the_run(store):
    ids = _runs(store, count=5, epochs=5)  # run 4 alone has learning rate 3e-4
    comparison = compare.load(store, ids)
    frame = compare.summary_frame(comparison, "val_accuracy", group_by="training.learning_rate")
    assert list(frame["runs"]) == [4, 1]
    assert frame["run"][1] == store.get_run(ids[4]).label and frame["run id"][1] == ids[4]
    series = compare.curve_series(comparison, "loss", group_by="training.learning_rate")
    assert [(s.label, s.std is None) for s in series][-2:] == [(store.get_run(ids[4]).label, True)] * 2


def test_grouping_by_an_unknown_field_is_a_sentence(store):
    comparison = compare.load(store, _runs(store, count=2, epochs=3))
    with pytest.raises(compare.CompareError, match="not a config field"):
        compare.summary_frame(comparison, "val_accuracy", group_by="training.nope")


def test_long_histories_are_thinned_for_drawing_only(store):
    run_id = compare_run(store, synthetic_config(0, 1500), seed=1)
    comparison = compare.load(store, [run_id])
    (series,) = compare.curve_series(comparison, "accuracy", training=False, max_points=300)
    assert len(series.y) <= 302
    values = [row["val_accuracy"] for row in store.epoch_history(run_id)]
    assert max(series.y) == max(values) and min(series.y) == min(values)  # the extremes survive
    summary = compare.summary_frame(comparison, "val_accuracy")
    assert summary["best value"][0] == max(values)  # the table reads every epoch


def test_time_axis_and_smoothing():
    history = [{"epoch": e, "loss": float(v), "_wall_time": 100.0 + 10 * e} for e, v in enumerate([4, 2, 3, 1], 1)]
    x, y, epochs = compare.curve(history, "loss", "time", started_at=100.0)
    assert list(x) == [10, 20, 30, 40] and list(epochs) == [1, 2, 3, 4]
    np.testing.assert_array_equal(compare.smooth(y, 0.0), y)
    smoothed = compare.smooth(y, 0.5)
    assert smoothed[0] == 4 and smoothed[1] == pytest.approx((0.25 * 4 + 0.5 * 2) / 0.75)
    with pytest.raises(compare.CompareError):
        compare.smooth(y, 1.0)


def test_config_differences(store):
    ids = _runs(store, count=3, epochs=2)
    comparison = compare.load(store, ids)
    differing = compare.differing_fields(comparison.runs)
    assert {"model.architecture", "training.seed"} <= set(differing)
    assert "training.learning_rate" not in differing  # runs 0-2 share 1e-4
    table, _ = compare.config_table(comparison.runs, only_differences=True)
    assert list(table.index) == differing and list(table.columns) == [r.label for r in comparison.runs]
    full, _ = compare.config_table(comparison.runs)
    assert "data.options.num_samples" in full.index and len(full) > len(table)
    frame = compare.hyperparameter_frame(comparison, "val_accuracy")
    assert list(frame.columns) == ["run id", "run", *differing, "val_accuracy"]


def test_filter_runs(store):
    ids = _runs(store, count=6, epochs=2)
    curation.add_tags(store, ids[1], ["keep"])
    runs = store.list_runs()
    by = lambda **kw: sorted(r.id for r in compare.filter_runs(runs, compare.RunFilter(**kw)))  # noqa: E731
    assert by(architectures=("compact3d",)) == sorted(ids[0::2])
    assert by(tags=("keep",)) == [ids[1]]
    assert by(name="SYNTHETIC-3") == [ids[3]]
    assert by(field="training.seed", value="2") == [ids[2], ids[5]]
    assert by(field="training.learning_rate", value="0.0001") == sorted(ids[:4])
    assert by(statuses=(RunStatus.FAILED,)) == []
    assert by(created_after=runs[0].created_at + 1) == []


# --------------------------------------------------------------- curation
def test_tags_are_cleaned_and_notes_kept_as_text(store):
    run_id = _runs(store, count=1, epochs=2)[0]
    assert curation.add_tags(store, run_id, [" a  b ", "c,a  b", ""]) == ("a b", "c")
    assert curation.remove_tags(store, run_id, ["c"]) == ("a b",)
    assert curation.set_notes(store, run_id, "  <b>x</b> [y](z)  ") == "<b>x</b> [y](z)"
    assert store.get_run(run_id).notes == "<b>x</b> [y](z)"
    with pytest.raises(curation.RunEditError, match="at most"):
        curation.set_tags(store, run_id, [f"t{i}" for i in range(curation.MAX_TAGS + 1)])


def test_delete_removes_the_runs_rows_and_folder_and_nothing_else(store):
    keep, gone = _runs(store, count=2, epochs=3)
    for run_id in (keep, gone):
        (paths.run_dir(run_id) / "best.keras").write_bytes(b"model")
        store.log_event(run_id, "hello")
    before = {table: _count(store, table, keep) for table in ("metrics", "predictions", "events")}
    curation.delete_run(store, gone)
    assert not paths.run_dir(gone, create=False).exists()
    assert (paths.run_dir(keep, create=False) / "best.keras").read_bytes() == b"model"
    assert [r.id for r in store.list_runs()] == [keep]
    for table in ("metrics", "predictions", "events"):
        assert _count(store, table, gone) == 0
        assert _count(store, table, keep) == before[table] > 0


def test_an_active_run_must_be_stopped_before_it_is_deleted(store):
    run_id = store.create_run(synthetic_config(0, 3))  # queued
    with pytest.raises(curation.RunEditError, match="stop it first"):
        curation.delete_run(store, run_id)
    assert store.get_run(run_id).status == RunStatus.QUEUED


def _count(store, table, run_id):
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT count(*) FROM {table} WHERE run_id = ?", (run_id,)).scalar()


def test_archive_hides_a_run_from_default_lists(store):
    ids = _runs(store, count=2, epochs=2)
    curation.set_archived(store, ids[0])
    assert [r.id for r in store.list_runs(archived=False)] == [ids[1]]
    assert store.get_run(ids[0]).archived
    assert json.loads(json.dumps(store.get_run(ids[0]).to_dict(), default=str))["tags"] == []


# ------------------------------------------------------- preset defaults
def _dropout_runs(store):
    """Three tutorial3d runs: dropout left to the preset (0.0), 0.2 and 0.5."""
    ids = []
    for index, dropout in enumerate((None, 0.2, 0.5)):
        config = synthetic_config(index, 5)
        config.model.architecture, config.model.dropout_rate = "tutorial3d", dropout
        ids.append(compare_run(store, config, seed=index))
    return ids


def test_a_knob_the_preset_decides_shows_its_value_marked_preset_and_stays_in_the_scatter(store):
    from ui import figures, tables

    ids = _dropout_runs(store)
    comparison = compare.load(store, ids)
    frame = compare.hyperparameter_frame(comparison, "val_accuracy")
    assert list(frame["model.dropout_rate"]) == [0.0, 0.2, 0.5]  # the effective value, not None
    assert frame.attrs["from_preset"]["model.dropout_rate"] == [True, False, False]
    figure = figures.scatter_figure(frame, "model.dropout_rate", "val_accuracy", "val_accuracy @ best",
                                            figures.run_colors(ids))
    assert [trace.x[0] for trace in figure.data] == [0.0, 0.2, 0.5]  # 3 points of 3
    assert "(preset)" in figure.data[0].hovertemplate and "(preset)" not in figure.data[1].hovertemplate
    table, differing = compare.config_table(comparison.runs)
    assert list(table.loc["model.dropout_rate"]) == ["0 (preset)", "0.2", "0.5"]
    assert table.loc["model.batchnorm"].tolist() == ["False (preset)"] * 3  # every knob, effective
    assert table.loc["data.folds"].tolist() == ["none"] * 3  # an unset field is not a "preset default"
    assert list(tables.runs_frame(comparison.runs)["dropout"]) == ["0 (preset)", "0.2", "0.5"]
    # An explicit 0 is not the preset's: it is shown as the value the user chose.
    explicit = synthetic_config(9, 5)
    explicit.model.architecture, explicit.model.dropout_rate = "tutorial3d", 0.0
    run = store.get_run(compare_run(store, explicit))
    assert compare.effective_cell(run.config, "model.dropout_rate") == "0"
    # Filters and groups see the effective value: the preset's 0 and an explicit 0 are one group.
    assert [len(g.run_ids) for g in compare.group_runs(comparison.runs + [run], "model.dropout_rate")] == [2, 1, 1]
    assert [r.id for r in compare.filter_runs(comparison.runs, compare.RunFilter(field="model.dropout_rate",
                                                                                   value="preset"))] == ids[:1]
