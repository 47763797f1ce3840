"""The Predict page's pieces, and the Inspect page's "share this model" panel (no TensorFlow: subprocesses).

Figures are pure functions; the widgets return plain values. Uploaded scans go
through the Data page's ``stage_upload`` (the same names, zip caps and demo
upload cap), are predicted, and are deleted at once: only the result (the
report, the preprocessed volume and the maps) stays, in this session's state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine import datasets
from engine.errors import LabError
from engine.inference import client
from ui import uploads, volume_viewer
from ui import volumes as volume_ui
from ui.text import markdown_text, plotly_text, plotly_texts

ERRORS = (LabError, OSError)
EXPORT_FORMATS = {"Keras (.keras)": "keras", "TensorFlow SavedModel": "savedmodel", "ONNX": "onnx"}


def pick_model(models: Sequence[client.Model], pinned: client.Model | None) -> client.Model:
    """The model selectbox; a hosted demo with a pinned model shows only that one."""
    if pinned is not None:
        st.caption(f"The model to try: {markdown_text(pinned.label)}")
        return pinned
    keys = [model.key for model in models]
    by_key = {model.key: model for model in models}
    if st.session_state.get("predict_model") not in keys:
        st.session_state["predict_model"] = keys[0]
    chosen = st.selectbox("Model (a finished run, or a group's ensemble)", keys, key="predict_model",
                          format_func=lambda key: by_key[key].label)
    return by_key[chosen]


def run_prediction(model: client.Model, files, tta: int, saliency: bool) -> dict[str, Any]:
    """Stage the upload, predict it in a subprocess, delete the upload; the result kept in the session."""
    folder, source = uploads.stage_upload([(file.name, file.getbuffer()) for file in files or []])
    try:
        report, arrays = client.predict(model, [source], tta=tta, saliency=saliency)
    finally:
        uploads.discard_upload(folder)
    return {"model": model.key, "report": report, "arrays": arrays, "upload": ", ".join(f.name for f in files)}


def probability_figure(class_names: Sequence[str], probabilities: Sequence[float], spread: Sequence[float] | None,
                       threshold: float | None) -> go.Figure:
    """One horizontal bar per class (the TTA spread as error bars); a two-class run's threshold as a line."""
    figure = go.Figure(go.Bar(
        x=list(probabilities), y=plotly_texts(class_names), orientation="h", marker_color="#1f77b4",
        error_x=dict(type="data", array=list(spread), visible=True) if spread is not None else None,
        text=[f"{p:.3f}" for p in probabilities], textposition="auto",
        hovertemplate="%{y}: %{x:.4f}<extra></extra>",
    ))
    if threshold is not None:
        figure.add_vline(x=threshold, line_dash="dash", line_color="grey",
                         annotation_text=f"threshold {threshold:g} on P({plotly_text(class_names[1])})")
    figure.update_layout(height=80 + 40 * len(class_names), xaxis=dict(range=[0, 1.05], title="probability"),
                         margin=dict(t=30, b=40, l=10, r=10), yaxis_autorange="reversed")
    return figure


def reference_figure(class_names: Sequence[str], reference: dict[str, Any], class_index: int,
                     probability: float) -> go.Figure:
    """The validation samples' P(class) per true class as box plots, this case's P(class) as a line."""
    figure = go.Figure()
    labels, probabilities = reference["labels"], reference["probabilities"]
    for index, name in enumerate(class_names):
        values = probabilities[labels == index, class_index] if len(labels) else np.zeros(0)
        figure.add_trace(go.Box(x=values, name=f"true {plotly_text(name)} ({len(values)})", boxpoints="all",
                                jitter=0.4, pointpos=0, orientation="h"))
    figure.add_vline(x=probability, line_color="red", line_width=3,
                     annotation_text=f"this scan {probability:.3f}")
    figure.update_layout(height=110 + 50 * len(class_names), showlegend=False,
                         xaxis=dict(range=[-0.02, 1.02], title=f"P({plotly_text(class_names[class_index])})"),
                         margin=dict(t=30, b=40, l=10, r=10))
    return figure


def show_case(result: dict[str, Any], position: int, reference: dict[str, Any]) -> None:
    """One predicted scan: warnings, the probability bar, TTA spread, the slices with saliency, the reference."""
    report = result["report"]
    case = report["cases"][position]
    names = report["class_names"]
    for warning in case["warnings"]:
        st.warning(markdown_text(warning), icon=":material/warning:")
    st.subheader(f"Prediction: {markdown_text(case['predicted'])}")
    tta = case.get("tta")
    caption = [markdown_text(f"{result['upload']}: {case['path']}"), "volume " + "x".join(map(str, case["volume_shape"][:3]))]
    if case.get("modality"):
        caption.append(markdown_text(case["modality"]))
    if case.get("spacing"):
        caption.append(" x ".join(f"{s:g}" for s in case["spacing"]) + " mm")
    st.caption(" · ".join(caption))
    st.plotly_chart(probability_figure(names, case["probabilities"], tta["std"] if tta else None, report["threshold"]),
                    key=f"predict_probabilities_{position}")
    if tta:
        st.caption(f"Mean over {len(tta['views'])} test-time views ({markdown_text(', '.join(tta['views']))}); "
                   "the bars' whiskers are one standard deviation. Largest spread: "
                   f"{max(tta['std']):.3f}.")
    for member in case.get("members", []):
        st.caption(f"run {member['run_id']}: " + ", ".join(
            f"P({markdown_text(n)}) {p:.3f}" for n, p in zip(names, member["probabilities"])))
    volume = result["arrays"]["volumes"][position][..., 0]
    overlay = None
    if "saliency" in result["arrays"]:
        overlay = datasets.resample(result["arrays"]["saliency"][position], volume.shape)
        st.caption(f"HiResCAM saliency for {markdown_text(case['predicted'])} over the volume as the model saw it.")
    indices, level, width = volume_viewer.volume_viewer(volume, (result["model"], case["path"], position),
                                                    f"predict_view_{position}")
    st.plotly_chart(volume_ui.slices_figure(volume, indices, level, width, overlay=overlay),
                    key=f"predict_slices_{position}")
    index = int(case["predicted_index"]) if len(names) > 2 else 1
    st.markdown(f"**Against the validation set** ({markdown_text(reference['note'])})")
    st.plotly_chart(reference_figure(names, reference, index, case["probabilities"][index]),
                    key=f"predict_reference_{position}")


def share_panel(run_id: int, finished: bool) -> None:
    """Inspect: export the model (Keras, SavedModel, ONNX) or write the HTML report, each in a subprocess."""
    with st.expander("Share this model: export or report", icon=":material/ios_share:"):
        if not finished:
            st.caption("A finished run can be exported and reported.")
            return
        columns = st.columns([2, 1, 1])
        label = columns[0].selectbox("Format", list(EXPORT_FORMATS), key="inspect_export_format")
        fmt = EXPORT_FORMATS[label]
        if columns[1].button("Prepare export", key="inspect_export", icon=":material/deployed_code:"):
            try:
                with st.spinner("Exporting (TensorFlow in a subprocess)..."):
                    st.session_state["inspect_export_file"] = (run_id, fmt, client.export(run_id, fmt))
            except ERRORS as error:
                st.error(markdown_text(error), icon=":material/error:")
        if columns[2].button("Prepare report", key="inspect_report", icon=":material/description:"):
            try:
                with st.spinner("Writing the report..."):
                    st.session_state["inspect_report_file"] = (run_id, client.report(run_id))
            except ERRORS as error:
                st.error(markdown_text(error), icon=":material/error:")
        prepared = st.session_state.get("inspect_export_file")
        if prepared and prepared[0] == run_id:
            st.download_button(f"Download the {prepared[1]} export (zip with preprocessing.json)", data=prepared[2],
                               file_name=f"run-{run_id}-{prepared[1]}.zip", mime="application/zip",
                               on_click="ignore", key="inspect_export_download")
        report = st.session_state.get("inspect_report_file")
        if report and report[0] == run_id:
            st.download_button("Download the report (one HTML file)", data=report[1],
                               file_name=f"run-{run_id}-report.html", mime="text/html", on_click="ignore",
                               key="inspect_report_download")


def ensemble_panel(store, run) -> None:
    """Inspect: a run of a fold / seed group shows the group's ensemble (mean probabilities) beside its members."""
    if not run.group:
        return
    from engine.evaluation import ensemble

    try:
        result = ensemble.evaluate_ensemble(store, run.group)
    except LabError:
        return  # fewer than two finished members, a sweep, or no test predictions yet
    rows = [{"model": f"run {e.run_id}" + (" (this run)" if e.run_id == run.id else ""), "test samples": len(e.labels),
             "accuracy": e.accuracy, "balanced accuracy": e.balanced_accuracy, "ROC AUC": e.roc_auc,
             "mean loss": e.mean_loss} for e in result.members]
    e = result.ensemble
    rows.append({"model": f"ensemble of {len(result.members)}", "test samples": len(e.labels), "accuracy": e.accuracy,
                 "balanced accuracy": e.balanced_accuracy, "ROC AUC": e.roc_auc, "mean loss": e.mean_loss})
    with st.expander(f"Ensemble of group {markdown_text(run.group)}: test metrics", icon=":material/stacks:"):
        st.dataframe(rows, hide_index=True, key="inspect_ensemble_table",
                     column_config={name: st.column_config.NumberColumn(format="%.4f")
                                    for name in ("accuracy", "balanced accuracy", "ROC AUC", "mean loss")})
        st.caption("The ensemble averages its members' test probabilities sample by sample "
                   f"({result.shared_samples} test samples every member holds); it can predict new scans on the "
                   "Predict page.")
