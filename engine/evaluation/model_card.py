"""A run's report as one self-contained HTML file (a model card a person can attach to an e-mail).

Sections (each an element with its id, in this order): ``config``, ``dataset``,
``curves`` (best epoch marked), ``confusion`` and ``per-class`` (test split at
the run's threshold, 95 % Wilson intervals), ``roc-pr``, ``doctor`` (findings
with their evidence), ``errors`` (the most confident test errors with their
stored saliency maps) and ``versions``. Plotly's JavaScript is embedded once,
inline (``include_plotlyjs=True``), and nothing else is referenced: the file
opens with no network. Every string that comes from a person (run name, notes,
class names, tags) or from a file is HTML-escaped.

NumPy / scikit-learn / Plotly only; TensorFlow is never imported (library
versions are read from the installed packages' metadata).
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from scipy import stats

import engine
from engine import datasets, paths
from engine.errors import LabError
from engine.evaluation import metrics
from engine.evaluation import report as report_module
from engine.evaluation import saliency as saliency_module
from engine.runs import RunRecord
from engine.store import artefacts

REPORT_FILE = "report.html"
SECTIONS = ("config", "dataset", "curves", "confusion", "per-class", "roc-pr", "doctor", "errors", "versions")
# The most confident errors shown in the gallery.
GALLERY_SIZE = 6
LIBRARIES = ("tensorflow", "keras", "numpy", "scipy", "scikit-learn", "pandas", "plotly", "h5py", "nibabel",
             "pydicom", "sqlalchemy", "streamlit")
OVERLAY_COLORSCALE = [[0.0, "rgba(255,0,0,0)"], [0.3, "rgba(255,0,0,0.05)"], [0.6, "rgba(255,80,0,0.45)"],
                      [1.0, "rgba(255,230,0,0.75)"]]
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .25em .6em; }
th { background: #f4f4f4; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
.problem { color: #b00020; } .warning { color: #b06000; } .note { color: #1a5fb4; }
.gallery { display: grid; grid-template-columns: repeat(3, 1fr); gap: .5em; }
"""


class ReportError(LabError):
    """A run that has nothing to report yet."""


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _wilson(successes: int, total: int) -> tuple[float | None, float | None]:
    if total <= 0:
        return None, None
    interval = stats.binomtest(int(successes), int(total)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def per_class_intervals(evaluation: report_module.Evaluation) -> list[dict[str, Any]]:
    """The per-class rows with 95 % Wilson intervals of precision, recall and specificity (from the counts)."""
    counts = np.asarray(evaluation.counts)
    total = int(counts.sum())
    rows = []
    for index, row in enumerate(evaluation.per_class):
        true_positive = int(counts[index, index])
        predicted, actual = int(counts[:, index].sum()), int(counts[index].sum())
        negatives = total - actual
        true_negative = negatives - (predicted - true_positive)
        rows.append({**row, "precision_ci": _wilson(true_positive, predicted),
                     "recall_ci": _wilson(true_positive, actual), "specificity_ci": _wilson(true_negative, negatives)})
    return rows


def _figure_html(figure: go.Figure, first: list[bool]) -> str:
    include = first[0]
    first[0] = False
    return pio.to_html(figure, include_plotlyjs=include, full_html=False, config={"displaylogo": False})


def _curves_figure(history: list[dict[str, Any]], best_epoch: int | None) -> go.Figure:
    figure = go.Figure()
    epochs = [row["epoch"] for row in history]
    for name in ("loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc"):
        values = [row.get(name) for row in history]
        if any(v is not None for v in values):
            figure.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=name,
                                        yaxis="y2" if "loss" not in name else "y"))
    if best_epoch is not None:
        figure.add_vline(x=best_epoch, line_dash="dash", line_color="green",
                         annotation_text=f"best epoch {best_epoch}")
    figure.update_layout(height=360, xaxis_title="epoch", yaxis_title="loss",
                         yaxis2=dict(title="accuracy / AUC", overlaying="y", side="right", range=[0, 1.02]),
                         margin=dict(t=30, b=40, l=50, r=50), legend=dict(orientation="h", y=-0.25))
    return figure


def _confusion_figure(evaluation: report_module.Evaluation) -> go.Figure:
    names = list(evaluation.class_names)
    text = [[f"{count}<br>{fraction:.0%}" for count, fraction in zip(row, fractions)]
            for row, fractions in zip(evaluation.counts, evaluation.normalized)]
    figure = go.Figure(go.Heatmap(z=evaluation.normalized, x=names, y=names, text=text, texttemplate="%{text}",
                                  colorscale="Blues", zmin=0, zmax=1, showscale=False))
    figure.update_layout(height=120 + 40 * len(names), xaxis_title="predicted", yaxis_title="true",
                         yaxis_autorange="reversed", margin=dict(t=20, b=40, l=60, r=20))
    return figure


def _roc_pr_figure(evaluation: report_module.Evaluation) -> go.Figure:
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("ROC", "precision-recall"))
    for curve in evaluation.roc:
        figure.add_trace(go.Scatter(x=curve.x, y=curve.y, name=f"{curve.class_name} (AUC {curve.auc:.3f})"), 1, 1)
    for curve in evaluation.pr:
        figure.add_trace(go.Scatter(x=curve.x, y=curve.y, name=f"{curve.class_name} (AP {curve.auc:.3f})"), 1, 2)
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"),
                                showlegend=False), 1, 1)
    figure.update_xaxes(title_text="false-positive rate", range=[0, 1], row=1, col=1)
    figure.update_yaxes(title_text="true-positive rate", range=[0, 1.02], row=1, col=1)
    figure.update_xaxes(title_text="recall", range=[0, 1], row=1, col=2)
    figure.update_yaxes(title_text="precision", range=[0, 1.02], row=1, col=2)
    figure.update_layout(height=380, margin=dict(t=40, b=40, l=50, r=20), legend=dict(orientation="h", y=-0.25))
    return figure


def _error_figure(volume: np.ndarray, cam: np.ndarray | None, title: str) -> go.Figure:
    """The axial slice through the saliency peak (the middle one without a map), the map over it."""
    index = (int(np.unravel_index(int(np.argmax(cam)), cam.shape)[0]) if cam is not None and cam.max() > 0
             else volume.shape[0] // 2)
    figure = go.Figure(go.Heatmap(z=volume[index], colorscale="gray", showscale=False))
    if cam is not None:
        figure.add_trace(go.Heatmap(z=cam[index], colorscale=OVERLAY_COLORSCALE, zmin=0, zmax=1, showscale=False))
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    figure.update_layout(height=260, title=dict(text=_text(title), font=dict(size=12)), margin=dict(t=40, b=0, l=0, r=0))
    return figure


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell if isinstance(cell, _Raw) else f"<td>{_text(cell)}</td>" for cell in row)
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class _Raw(str):
    """A table cell already rendered (numbers)."""


def _number(value: float | None, interval: tuple[float | None, float | None] | None = None) -> _Raw:
    if value is None:
        return _Raw('<td class="n">-</td>' if interval is None or interval == (None, None) else
                    f'<td class="n">{metrics.UNDEFINED_NO_SAMPLES}</td>')
    shown = f"{value:.3f}"
    if interval and interval[0] is not None:
        shown += f" ({interval[0]:.3f}–{interval[1]:.3f})"
    return _Raw(f'<td class="n">{shown}</td>')


def _versions() -> dict[str, str]:
    found = {"conv3d-lab": engine.__version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _dataset_facts(run: RunRecord) -> dict[str, Any]:
    facts: dict[str, Any] = {"dataset": run.config.data.dataset, "fingerprint": run.dataset_fingerprint,
                             "options": run.config.data.options, "split sizes": dict(run.split_sizes),
                             "class names": list(run.class_names), "run normalization": run.config.data.normalization}
    try:
        info = datasets.dataset_info(run.config.data.dataset, run.config.data.options)
    except LabError as e:
        facts["note"] = f"the dataset cannot be read any more: {e}"
        return facts
    facts["volume shape"] = info["volume_shape"]
    for key in ("source", "reader", "preprocessing", "class_counts"):
        if key in info:
            facts[key] = info[key]
    if info.get("fingerprint") and info["fingerprint"] != run.dataset_fingerprint:
        facts["note"] = "the dataset was imported again after this run was trained (its fingerprint differs)"
    return facts


def _gallery(run: RunRecord, evaluation: report_module.Evaluation, first: list[bool]) -> str:
    table = report_module.sample_table(evaluation)
    errors = table[~table["correct"]].sort_values("confidence", ascending=False).head(GALLERY_SIZE)
    if errors.empty:
        return "<p>The model made no error on the test split.</p>"
    try:
        dataset = datasets.load_dataset(run.config.data.dataset, run.config.data.options)
    except LabError as e:
        return f"<p>{_text(f'The dataset cannot be read any more ({e}), so the errors cannot be drawn.')}</p>"
    stored = saliency_module.load_saliency(artefacts.run_folder(run.id))
    cells = []
    for row in errors.itertuples():
        volume = datasets.normalize(np.asarray(dataset.x[int(row.sample_id)])[np.newaxis],
                                    run.config.data.normalization)[0][..., 0]
        cam = saliency_module.map_for_sample(stored, int(row.sample_id), volume.shape)
        title = (f"sample {row.sample_id}: true {row.true}, predicted {row.predicted} ({row.confidence:.2f})"
                 + ("" if cam is not None else ", no stored map"))
        cells.append(f"<div>{_figure_html(_error_figure(volume, cam, title), first)}</div>")
    return (f"<p>The {len(errors)} test errors the model was most sure of, the axial slice through the HiResCAM "
            f"peak for the predicted class.</p><div class='gallery'>{''.join(cells)}</div>")


def build_report(store, run_id: int) -> str:
    """The HTML text of run ``run_id``'s report (ReportError with a sentence when it has no test predictions)."""
    from engine import doctor

    run = store.get_run(run_id)
    try:
        evaluation = report_module.evaluate_run(store, run_id, "test", best=True,
                                                threshold=0.5 if len(run.class_names) == 2 else None)
    except report_module.EvaluationError as e:
        raise ReportError(f"Run {run_id} has no test results to report yet ({e})") from e
    first = [True]  # plotly.js goes inline into the first figure only
    history = store.epoch_history(run_id)
    findings = doctor.diagnose(store, run_id)
    title = f"Run {run.id}: {run.name}"
    parts = [f"<h1>{_text(title)}</h1>",
             f"<p>{_text(run.config.model.architecture)} on {_text(run.config.data.dataset)}, status "
             f"{_text(run.status.label)}, {run.epochs_done} epochs; report written "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.</p>"]
    if run.notes:
        parts.append(f"<p>Notes: {_text(run.notes)}</p>")
    if run.tags:
        parts.append(f"<p>Tags: {_text(', '.join(run.tags))}</p>")
    parts.append(_section("config", "Configuration", f"<pre>{_text(json.dumps(run.config.to_dict(), indent=1))}</pre>"))
    parts.append(_section("dataset", "Dataset and fingerprint",
                          f"<pre>{_text(json.dumps(_dataset_facts(run), indent=1, default=str))}</pre>"))
    parts.append(_section("curves", "Training curves",
                          _figure_html(_curves_figure(history, run.best_epoch), first) if history
                          else "<p>No epoch was recorded.</p>"))
    threshold = ("" if evaluation.threshold is None or evaluation.positive_class is None else
                 f", predicted {evaluation.positive_class} when P({evaluation.positive_class}) ≥ {evaluation.threshold:g}")
    parts.append(_section("confusion", "Confusion matrix",
                          f"<p>Test split, epoch {evaluation.epoch} (the best weights), {len(evaluation.labels)} samples"
                          f"{_text(threshold)}; accuracy {evaluation.accuracy:.3f}, balanced accuracy "
                          f"{metrics.shown(evaluation.balanced_accuracy, 3, metrics.NO_SAMPLES)}.</p>"
                          + _figure_html(_confusion_figure(evaluation), first)))
    rows = [[row["class"], _number(row["precision"], row["precision_ci"]), _number(row["recall"], row["recall_ci"]),
             _number(row["specificity"], row["specificity_ci"]), _number(row["f1"]), _Raw(f'<td class="n">{row["support"]}</td>')]
            for row in per_class_intervals(evaluation)]
    parts.append(_section("per-class", "Per class (95 % Wilson intervals)",
                          _table(["class", "precision", "recall (sensitivity)", "specificity", "F1", "support"], rows)))
    parts.append(_section("roc-pr", "ROC and precision-recall",
                          _figure_html(_roc_pr_figure(evaluation), first) if evaluation.roc
                          else "<p>Undefined: the test split holds one class only.</p>"))
    finding_rows = [[_Raw(f'<td class="{_text(f.severity.value)}">{_text(f.severity.value)}</td>'),
                     f.title if f.caused_by is None else f"(consequence of {f.caused_by}) {f.title}",
                     json.dumps(f.evidence, default=str)[:600], f.suggestion] for f in findings]
    parts.append(_section("doctor", "The doctor's findings",
                          _table(["severity", "finding", "evidence", "what to do"], finding_rows) if findings
                          else "<p>The doctor found nothing to report.</p>"))
    parts.append(_section("errors", "Most confident errors", _gallery(run, evaluation, first)))
    parts.append(_section("versions", "Versions", _table(["package", "version"], [[k, v] for k, v in _versions().items()])))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_text(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def _section(section_id: str, heading: str, content: str) -> str:
    return f"<section id='{section_id}'><h2>{_text(heading)}</h2>{content}</section>"


def write_report(store, run_id: int, out: Path | None = None) -> Path:
    """Write the report to ``out`` (default runs/<id>/report.html) through a temporary file; returns the path."""
    text = build_report(store, run_id)
    target = Path(out) if out is not None else paths.run_dir(run_id) / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return target
