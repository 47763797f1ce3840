"""Inspect a run: the validation confusion matrix epoch by epoch, test results, curves, samples and saliency.

Everything shown comes from ``engine.evaluation`` over the stored predictions;
the sample viewer reads the run's dataset from its disk cache and the Grad-CAM
maps from ``saliency.npz``. TensorFlow is never imported here.
"""

from __future__ import annotations

import json
import os

import streamlit as st

from engine import evaluation, paths
from engine.weights import checkpoints
from engine.machine import execution
from engine.errors import LabError
from engine.evaluation import samples as evaluation_samples
from engine.runs import RunStatus
from engine.store import artefacts, open_store
from ui import access
from ui import doctor as doctor_ui
from ui import fix as fix_ui
from ui import inspect as inspect_ui
from ui import predict_view
from ui import volumes as volume_ui
from ui.state import seed
from ui.text import markdown_text


INSPECT_REFRESH_S = 3  # how often the page looks for a new epoch of a run still training




st.title("Inspect")
store = open_store()
db_url = store.url

# ------------------------------------------------------------------ run picker
runs = [run for run in store.list_runs() if run.epochs_done > 0 and run.class_names]
if not runs:
    st.info("No run has finished an epoch yet. Start one on the Train page; its predictions appear here.")
    st.stop()
run_ids = [run.id for run in runs]
requested = st.query_params.get("run")
if "inspect_run" not in st.session_state and requested and requested.isdigit() and int(requested) in run_ids:
    st.session_state["inspect_run"] = int(requested)
labels = {run.id: f"{run.label} · {run.status.label} · {run.architecture} on {run.dataset}" for run in runs}
run_id = st.selectbox("Run", run_ids, format_func=labels.get, key="inspect_run")
st.query_params["run"] = str(run_id)
run = store.get_run(run_id)
try:  # with CONV3D_LAB_ARTIFACTS set, the run's files come from the shared root when missing or older here
    run_dir = artefacts.run_folder(run_id)  # a reader: a deleted folder stays deleted
except LabError as error:
    run_dir = paths.run_dir(run_id, create=False)
    st.warning(markdown_text(error), icon=":material/cloud_off:")
class_names = evaluation.class_names_of(run)
binary = len(class_names) == 2
version = (run.status, run.epochs_done, run.best_epoch)
val_epochs = store.prediction_epochs(run_id, "val")
test_epochs = store.prediction_epochs(run_id, "test")
if not val_epochs:
    st.info(f"Run {run_id} has no stored validation predictions yet.")
    st.stop()

best_epoch = run.best_epoch
summary = [run.status.label, f"epoch {run.epochs_done}/{run.epochs_total}"]
if run.best_value is not None:
    summary.append(f"best epoch {best_epoch} ({run.monitor} {run.best_value:.4f})")
if run.test_metrics.get("accuracy") is not None:
    summary.append(f"test accuracy {run.test_metrics['accuracy']:.4f}")
if binary:
    summary.append(markdown_text(evaluation.positive_class_note(run)))
chosen = execution.of_run(run_id)
if chosen is not None:
    summary.append(markdown_text(chosen.summary()))
st.caption(" · ".join(summary))
if run.status.is_active:

    @st.fragment(run_every=INSPECT_REFRESH_S)
    def follow_training() -> None:
        """Redraw the page when the training run records an epoch or ends (widget choices are kept)."""
        latest = store.get_run(run_id)
        if (latest.status, latest.epochs_done, latest.best_epoch) != version:
            st.rerun()
        st.caption(f"Still training: this page redraws when epoch {run.epochs_done + 1} is recorded.")

    follow_training()
best_path = run_dir / checkpoints.BEST
download_columns = st.columns(2)
if run_dir.is_dir():
    best_problem = checkpoints.problem(best_path)  # never offer a checkpoint that would not load
    download_columns[0].download_button(
        "Download best.keras", data=best_path.read_bytes if best_problem is None else b"",
        file_name=f"run-{run_id}-best.keras", mime="application/octet-stream", disabled=best_problem is not None,
        on_click="ignore", key="inspect_download_model",
        help=None if best_problem is None else f"best.keras {best_problem}.",
    )
else:
    download_columns[0].warning(
        f"The files of run #{run_id} are gone (its folder was deleted from the lab's workspace): no model "
        "checkpoint or Grad-CAM maps. The predictions below are kept in the database.",
        icon=":material/folder_off:",
    )
download_columns[1].download_button(
    "Download config JSON", data=json.dumps(run.config.to_dict(), indent=2, sort_keys=True),
    file_name=f"run-{run_id}-config.json",
    mime="application/json", on_click="ignore", key="inspect_download_config",
)
access.share_button("run", [run_id], key="inspect_share")
inspect_ui.show_timeline(store.get_events(run_id), key="inspect_timeline")

predict_view.share_panel(run_id, run.status == RunStatus.FINISHED and run_dir.is_dir())
predict_view.ensemble_panel(store, run)

# ------------------------------------------------------------------ the doctor
st.header("Doctor")
doctor_ui.findings_panel(doctor_ui.findings(db_url, run_id, version), key="inspect_doctor",
                         action=lambda finding, key: fix_ui.apply_action(store, run, finding, key))
st.subheader("Fixes")
fix_ui.results_panel(store, run_id, key="inspect_fix")

# ------------------------------------------------------- validation, epoch by epoch
st.header("Validation")
default_epoch = best_epoch if best_epoch in val_epochs else val_epochs[-1]
seed("inspect_epoch", default_epoch, lambda epoch: epoch in val_epochs)
if len(val_epochs) > 1:
    chosen = st.select_slider("Epoch", options=val_epochs, key="inspect_epoch")
else:
    chosen = val_epochs[0]
threshold = None
positive = run.positive_class  # two classes: sensitivity, the curves and the threshold are about it
positive_index = class_names.index(positive) if binary else None
if binary:
    seed("inspect_threshold", 0.5)  # the Youden button sets it too
    threshold = st.slider(
        f"Decision threshold on P({markdown_text(positive)})", 0.0, 1.0, step=0.01, key="inspect_threshold",
        help=f"A sample is predicted as {markdown_text(positive)} (the positive class) when P({markdown_text(positive)}) "
        "reaches the threshold.",
    )
val = inspect_ui.evaluation_at(db_url, run_id, "val", chosen, threshold, version)


inspect_ui.show_results(
    val, inspect_ui.result_figures(db_url, run_id, "val", chosen, threshold, version, f"Validation, epoch {chosen}"),
    "inspect_val",
)
if binary and val.youden is not None:
    st.button(
        "Use Youden's best threshold", key="inspect_use_youden",
        on_click=lambda value=round(val.youden.threshold, 2): st.session_state.update(inspect_threshold=value),
    )
true_counts = tuple(val.true_counts)
st.plotly_chart(
    inspect_ui.distribution_chart(db_url, run_id, tuple(class_names), threshold, version, true_counts, positive_index),
    key="inspect_distribution",
)

# ------------------------------------------------------------- test, best weights
st.header("Test (best weights)")
test = None
if test_epochs:
    test = inspect_ui.evaluation_at(db_url, run_id, "test", test_epochs[-1], threshold, version)
    title = f"Test, best weights (epoch {test.epoch})"
    inspect_ui.show_results(
        test, inspect_ui.result_figures(db_url, run_id, "test", test.epoch, threshold, version, title), "inspect_test"
    )
else:
    st.info("Test predictions are stored when the run finishes.")

# ---------------------------------------------------------------- per-sample table
st.header("Samples")
split_options = {f"validation (epoch {chosen})": val} | ({f"test (epoch {test.epoch})": test} if test else {})
split_label = st.radio("Predictions of", list(split_options), horizontal=True, key="inspect_sample_split")
result = split_options[split_label]
try:
    dataset = inspect_ui.run_dataset(run.config.to_json(), str(paths.data_cache_dir()))
except (LabError, OSError) as error:
    dataset = None
    st.warning(f"The volumes of this run's dataset cannot be loaded: {markdown_text(error)}")
table = evaluation.sample_table(result, None if dataset is None else dataset.group_labels())
filters = st.columns([1, 2, 2])
misclassified = filters[0].checkbox("Misclassified only", key="inspect_misclassified")
seed("inspect_classes", [], lambda chosen: set(chosen) <= set(class_names))
classes = filters[1].multiselect("True class", class_names, key="inspect_classes")
confidence = filters[2].slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="inspect_confidence")
shown = evaluation.filter_samples(
    table, misclassified_only=misclassified, classes=classes, confidence_range=confidence
).sort_values("loss", ascending=False)
st.dataframe(inspect_ui.samples_display(shown), hide_index=True, key="inspect_samples_table",
             column_config={"confidence": st.column_config.NumberColumn(format="%.3f"),
                            "loss": st.column_config.NumberColumn(format="%.4f")})
st.download_button(
    f"Download {len(shown)} rows as CSV", data=shown.to_csv(index=False), file_name=f"run-{run_id}-samples.csv",
    mime="text/csv", on_click="ignore", key="inspect_download_samples",
)
if shown.empty:
    st.info("No sample matches these filters.")
    st.stop()

# ------------------------------------------------------------------ sample viewer
seed("inspect_sample", int(shown["sample_id"].iloc[0]), lambda sample: sample in set(shown["sample_id"]))
sample_id = st.selectbox("Sample (highest loss first)", shown["sample_id"].tolist(), key="inspect_sample")
row = shown[shown["sample_id"] == sample_id].iloc[0]
st.markdown(f"**Sample {sample_id}**: true **{markdown_text(row['true'])}**, predicted **{markdown_text(row['predicted'])}** "
            f"(confidence {row['confidence']:.3f}, loss {row['loss']:.4f})")
history_column, viewer_column = st.columns([2, 3])
history = inspect_ui.history_chart(
    db_url, run_id, int(sample_id), tuple(class_names), class_names.index(row["true"]), chosen, version
)
if history is not None:
    history_column.plotly_chart(history, key="inspect_history")
else:
    history_column.caption("This sample is not in the validation split, so it has no per-epoch history.")

try:
    volume = None if dataset is None else evaluation_samples.sample_volume(dataset, sample_id)
except LabError as error:
    volume = None
    viewer_column.warning(markdown_text(error))
if volume is not None:
    saliency_path = run_dir / "saliency.npz"
    maps = inspect_ui.saliency(str(run_dir), os.path.getmtime(saliency_path)) if saliency_path.exists() else None
    overlay = evaluation.map_for_sample(maps, sample_id, volume.shape)
    with viewer_column:
        show_overlay = st.checkbox(
            "Grad-CAM overlay", value=True, disabled=overlay is None, key="inspect_overlay",
            help="Maps are computed after training, with the best weights, for test samples only."
            if overlay is None else f"{maps['method']} map of layer {maps['layer']} for the predicted class.",
        )
        low, high, level_default, width_default = volume_ui.window_defaults(volume)
        span = max(high - low, 1e-6)
        # A new sample starts at its default window and at the slices through its saliency peak (or centre).
        same_sample = st.session_state.get("inspect_viewer_sample") == (run_id, sample_id)
        st.session_state["inspect_viewer_sample"] = (run_id, sample_id)
        seed("inspect_level", float(level_default), lambda value: same_sample and low <= value <= high)
        seed("inspect_window", float(width_default), lambda value: same_sample and span / 100 <= value <= 2 * span)
        centre = volume_ui.focus(volume, overlay)
        for name, axis in volume_ui.PLANES:
            seed(f"inspect_slice_{name}", centre[axis], lambda value: same_sample)
        window_columns = st.columns(2)
        level = window_columns[0].slider("Level", low, high, step=span / 100, key="inspect_level")
        width = window_columns[1].slider("Window", span / 100, 2 * span, step=span / 100, key="inspect_window")
        slice_columns = st.columns(3)
        indices = [
            slice_columns[axis].slider(name, 0, volume.shape[axis] - 1, key=f"inspect_slice_{name}")
            for name, axis in volume_ui.PLANES
        ]
    shown_overlay = overlay if show_overlay and overlay is not None else None
    st.plotly_chart(inspect_ui.slices_chart(volume, tuple(indices), level, width, shown_overlay), key="inspect_slices")
    if st.toggle("3D view", value=True, key="inspect_3d"):
        st.plotly_chart(inspect_ui.volume_chart(volume, level, width, shown_overlay), key="inspect_volume")
