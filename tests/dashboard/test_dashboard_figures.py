"""The pure pieces of the dashboard: figure builders, table rows, ETA, URL ids, incremental reads."""

from __future__ import annotations

import numpy as np

from tests.fake_runs import fake_run
from ui import figures, tables
from ui.live import MetricCache


def test_curves_figure_has_training_and_validation_per_metric_and_run():
    from ui.runs_view import live_curves_figure

    histories = {
        1: [{"epoch": 1, "loss": 1.0, "val_loss": 1.1, "accuracy": 0.5, "val_accuracy": 0.4},
            {"epoch": 2, "loss": 0.5, "val_loss": 0.7, "accuracy": 0.8, "val_accuracy": 0.6}],
        2: [{"epoch": 1, "loss": 2.0}],
    }
    figure = live_curves_figure(histories, {1: "#1 a", 2: "#2 b"})
    traces = {(trace.meta["run_ids"][0], trace.meta["metric"]): trace for trace in figure.data}
    assert set(traces) == {(1, "loss"), (1, "val_loss"), (1, "accuracy"), (1, "val_accuracy"), (2, "loss")}
    assert list(traces[1, "val_loss"].y) == [1.1, 0.7] and traces[1, "val_loss"].line.dash == "dash"
    assert traces[1, "loss"].line.color != traces[2, "loss"].line.color
    assert traces[1, "loss"].name == "#1 a · training"
    # One legend entry per run and split, though each is drawn in both panels.
    assert [trace.name for trace in figure.data if trace.showlegend] == ["#1 a · training", "#1 a · validation",
                                                                          "#2 b · training"]
    assert figure.layout.yaxis2.range == (0, 1.02) and figure.layout.xaxis.range[0] == 0


def test_one_grey_slice_grid_for_every_page():
    ramp = np.arange(16, dtype=float).reshape(4, 4)
    # A row of slices (the Train page's preview); titles are plain text, escaped once for Plotly.
    row = figures.slice_grid_figure([[ramp, ramp * 2]], [["a & b", "<b>c</b>"]])
    assert len(row.data) == 2 and [a.text for a in row.layout.annotations] == ["a &amp; b", "&lt;b&gt;c&lt;/b&gt;"]
    assert row.data[0].zmin is None  # each slice on its own scale
    # Ragged rows (the Data page's grid: classes with fewer samples) leave blank cells.
    grid = figures.slice_grid_figure([[ramp, ramp, ramp], [ramp]], [["x · #0", "x · #1", "x · #2"], ["y · #3"]])
    assert len(grid.data) == 4 and grid.layout.height == 40 + 150 * 2
    # Before / after: one grey scale per row, row titles on the left.
    pairs = figures.slice_grid_figure([[ramp, ramp + 10]], row_titles=["cube"], column_titles=["before", "after"],
                                      window="row")
    assert (pairs.data[0].zmin, pairs.data[0].zmax) == (0.0, 25.0) == (pairs.data[1].zmin, pairs.data[1].zmax)
    assert pairs.layout.yaxis.title.text == "cube"
    # A fixed window with a saliency overlay (Inspect, Predict): one colour bar for the grid.
    overlay = figures.slice_grid_figure([[ramp, ramp]], window=(2.0, 6.0), overlays=[[ramp / 15, ramp / 15]])
    assert [trace.zmin for trace in overlay.data] == [2.0, 0.0, 2.0, 0.0]
    assert [trace.showscale for trace in overlay.data] == [False, False, False, True]


def test_one_parallel_coordinates_builder():
    figure = figures.parallel_figure({"lr": [1e-4, 1e-2, 1e-3], "arch": ["b", "a", "b"]}, "val_loss (lower is better)",
                                     [0.5, 0.3, 0.4], log_columns=["lr"], lower_is_better=True)
    lr, arch, result = figure.data[0].dimensions
    assert list(lr.values) == [-4.0, -2.0, -3.0] and list(lr.ticktext) == ["1e-4", "1e-3", "1e-2"]
    assert list(arch.values) == [1, 0, 1] and list(arch.ticktext) == ["a", "b"]
    assert result.label == "val_loss (lower is better)" and figure.data[0].line.reversescale is True


def test_batch_positions_are_fractional_epochs():
    rows = [{"epoch": 1, "step": 1, "value": 1.0}, {"epoch": 1, "step": 3, "value": 0.9},
            {"epoch": 2, "step": 1, "value": 0.8}]
    assert figures.batch_positions(rows) == [0.5, 1.0, 1.5]
    figure = figures.batch_loss_figure({7: rows, 8: []})
    assert len(figure.data) == 1 and list(figure.data[0].y) == [1.0, 0.9, 0.8]


def test_dataset_preview_figures():
    bars = figures.class_balance_figure(["cube", "ball"], [10, 6])
    assert list(bars.data[0].y) == [10, 6]
    assert list(bars.data[0].x) == ["cube", "ball"]


def test_runs_frame_rows(lab_home):
    from engine.store import open_store

    store = open_store()
    run_id = fake_run(store, "finished", epochs_done=3, name="a")  # of 5 epochs
    frame = tables.runs_frame([store.get_run(run_id)])
    row = frame.iloc[0].to_dict()
    assert row["status"] == "✓ finished" and row["epoch"] == "3/5" and row["dataset"] == "shapes3d"
    assert row["best"] == "val_loss 0.4 @ 3" and row["dropout"] == "0 (preset)" and row["duration"] == "35s"
    assert "background-color" in tables.status_style(row["status"])


def test_eta_uses_the_spacing_of_recorded_epochs():
    assert tables.eta_seconds([], 100.0, 0, 10) is None
    assert tables.eta_seconds([110.0], 100.0, 1, 5) == 40.0
    assert tables.eta_seconds([110.0, 112.0, 114.0], 100.0, 3, 5) == 4.0


def test_run_ids_in_the_url():
    assert tables.parse_run_ids("3,1,x,3, 7") == [3, 1, 7]
    assert tables.parse_run_ids(None) == []
    assert tables.format_run_ids([3, 1]) == "3,1"
    assert tables.format_duration(3725) == "1h 02m" and tables.format_bytes(3 * 1024**2) == "3.0 MiB"


def test_metric_cache_reads_each_row_once(lab_home):
    from engine.store import open_store

    store = open_store()
    first = fake_run(store, "running", epochs_done=2, batches=2)
    second = fake_run(store, "queued")
    cache = MetricCache()
    assert cache.refresh(store, [first, second]) == 2 * 4 + 2 * 2
    assert cache.refresh(store, [first, second]) == 0
    assert cache.get(second).after_id == cache.get(first).after_id  # an empty run does not drag reads back
    store.log_metrics(second, [{"kind": "epoch", "epoch": 1, "name": "loss", "value": 0.3}])
    assert cache.refresh(store, [first, second]) == 1
    assert cache.get(second).history() == [{"epoch": 1, "loss": 0.3, "_wall_time": cache.get(second).epochs[1]["_wall_time"]}]
    # A resume discards the epochs after the checkpoint; the cache starts that run over.
    store.discard_after_epoch(first, 1)
    cache.drop_stale(first, epochs_done=1)
    cache.refresh(store, [first])
    assert sorted(cache.get(first).epochs) == [1] and len(cache.get(first).batches) == 2
