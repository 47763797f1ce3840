"""The doctor's findings on the pages: a findings panel with evidence charts, and a problem badge.

The figure builders are pure functions from a ``Finding`` to a Plotly figure
(or None when the finding has nothing to draw); user text (class names) in a
figure is escaped for Plotly's HTML-like labels, and in Markdown for
``st.markdown``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from engine import doctor, probe
from engine.errors import LabError
from engine.doctor import Finding, Severity
from engine.store import open_store
from ui.text import markdown_text, plotly_text

TRAIN_COLOR, VAL_COLOR, MARK_COLOR = "#1f77b4", "#d62728", "#6b7280"


def _layout(figure: go.Figure, title: str, height: int = 280) -> go.Figure:
    # The legend sits between the title and the plot, so it never covers the x axis' title; the axes
    # reserve room for their tick labels and titles (automargin) instead of a fixed margin that cut them.
    figure.update_layout(title=dict(text=plotly_text(title), y=0.98, yanchor="top"), height=height + 40,
                         margin=dict(t=80, b=10, l=10, r=10),
                         legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)
    return figure


def _loss_figure(evidence: dict, title: str, log: bool = False) -> go.Figure:
    figure = go.Figure()
    if evidence.get("loss"):
        figure.add_trace(go.Scatter(x=evidence["epochs"], y=evidence["loss"], name="training loss",
                                    mode="lines+markers", line=dict(color=TRAIN_COLOR)))
    if evidence.get("val_loss"):
        figure.add_trace(go.Scatter(x=evidence["epochs"], y=evidence["val_loss"], name="validation loss",
                                    mode="lines+markers", line=dict(color=VAL_COLOR, dash="dash")))
    figure.update_xaxes(title="epoch", dtick=1 if len(evidence.get("epochs", [])) <= 20 else None)
    figure.update_yaxes(title="loss", type="log" if log else "linear")
    return _layout(figure, title)


def overfitting_figure(finding: Finding) -> go.Figure:
    evidence = finding.evidence
    figure = _loss_figure(evidence, "Loss per epoch: validation minimum and the epochs past it")
    best, last = evidence["best_epoch"], evidence["last_epoch"]
    if last > best:
        figure.add_vrect(x0=best, x1=last, fillcolor=VAL_COLOR, opacity=0.08, line_width=0,
                         annotation_text=f"{last - best} epoch(s) past the minimum", annotation_position="top left")
    figure.add_vline(x=best, line=dict(color=MARK_COLOR, dash="dot"))
    figure.add_trace(go.Scatter(x=[best], y=[evidence["best_val_loss"]], mode="markers", name=f"minimum (epoch {best})",
                                marker=dict(size=12, color=VAL_COLOR, symbol="star")))
    return figure


def collapse_figure(finding: Finding) -> go.Figure:
    rows = finding.evidence["per_epoch"]
    epochs = [row["epoch"] for row in rows]
    figure = go.Figure([
        go.Bar(x=epochs, y=[row["top_share"] for row in rows], name="share of predictions: most-predicted class",
               marker_color=[VAL_COLOR if row["collapsed"] else TRAIN_COLOR for row in rows],
               text=[plotly_text(row["top_class"]) for row in rows], textposition="inside"),
        go.Scatter(x=epochs, y=[row["label_share"] for row in rows], name="share of labels: that class",
                   mode="lines+markers", line=dict(color="black")),
        go.Scatter(x=epochs, y=[row["accuracy"] for row in rows], name="validation accuracy",
                   mode="lines+markers", line=dict(color=MARK_COLOR, dash="dot")),
    ])
    figure.update_xaxes(title="epoch", dtick=1 if len(epochs) <= 20 else None)
    figure.update_yaxes(title="share", range=[0, 1.05], tickformat=".0%")
    return _layout(figure, "Most-predicted class per epoch against the label distribution", 320)


def batchnorm_figure(finding: Finding) -> go.Figure:
    evidence = finding.evidence
    values = [evidence["accuracy_inference"], evidence["accuracy_batch_stats"]]
    figure = go.Figure(go.Bar(
        x=["inference mode (moving statistics)", "training mode (batch statistics)"], y=values,
        text=[f"{value:.1%}" for value in values], textposition="outside", cliponaxis=False,
        marker_color=[VAL_COLOR, TRAIN_COLOR],
    ))
    figure.update_yaxes(title="validation accuracy", range=[0, 1.1], tickformat=".0%")
    return _layout(figure, f"Validation accuracy with BatchNorm in each mode (epoch {finding.epoch})")


def chance_figure(finding: Finding) -> go.Figure:
    evidence = finding.evidence
    accuracy = evidence["accuracy"]
    figure = go.Figure(go.Scatter(
        x=[accuracy], y=["validation accuracy"], mode="markers", marker=dict(size=14, color=TRAIN_COLOR),
        error_x=dict(type="data", symmetric=False, array=[evidence["interval_high"] - accuracy],
                     arrayminus=[accuracy - evidence["interval_low"]]),
        name=f"{accuracy:.1%} (95% interval, {evidence['samples']} samples)",
    ))
    # One label left of its line, the other right of it: the two baselines are often the same number.
    for name, value, dash, side in (("majority class", evidence["majority_baseline"], "dash", "top left"),
                                    ("stratified random", evidence["stratified_baseline"], "dot", "top right")):
        figure.add_vline(x=value, line=dict(color=MARK_COLOR, dash=dash),
                         annotation_text=f"{name} {value:.0%}", annotation_position=side)
    figure.update_xaxes(title="accuracy", range=[0, 1.02], tickformat=".0%")
    figure.update_yaxes(visible=False)
    return _layout(figure, "Validation accuracy against chance", 220)


def counts_figure(finding: Finding) -> go.Figure:
    counts = finding.evidence["counts"]
    names = [plotly_text(name) for name in counts]
    figure = go.Figure(go.Bar(x=names, y=list(counts.values()), text=list(counts.values()), textposition="outside",
                              cliponaxis=False))
    figure.update_xaxes(type="category", title="class")
    figure.update_yaxes(title="samples")
    return _layout(figure, f"Samples per class in the {finding.evidence['split']} split")


def finding_figure(finding: Finding) -> go.Figure | None:
    """The evidence chart of a finding, or None when it has none."""
    if finding.id == "overfitting":
        return overfitting_figure(finding)
    if finding.id == "collapse":
        return collapse_figure(finding)
    if finding.id == "batchnorm_gap":
        return batchnorm_figure(finding)
    if finding.id == "chance":
        return chance_figure(finding)
    if finding.id in ("single_class_split", "split_shift", "few_samples") and finding.evidence.get("counts"):
        return counts_figure(finding)
    if finding.id in ("divergence", "flat_loss", "oscillation") and finding.evidence.get("epochs"):
        finite = [v for v in finding.evidence.get("loss", []) + finding.evidence.get("val_loss", [])
                  if v is not None and v == v and v > 0]
        return _loss_figure(finding.evidence, "Loss per epoch", log=finding.id == "divergence" and bool(finite))
    return None


def lr_find_figure(result: dict[str, Any]) -> go.Figure:
    """Loss against learning rate (log axis), raw and smoothed, with the suggested rate marked."""
    rates, suggestion = result["learning_rates"], result["suggestion"]
    figure = go.Figure([
        go.Scatter(x=rates, y=result["losses"], mode="markers", name="batch loss", marker=dict(color="#9ca3af", size=5)),
        go.Scatter(x=rates, y=result["smoothed"], mode="lines", name="smoothed loss", line=dict(color=TRAIN_COLOR)),
    ])
    figure.add_vline(x=suggestion["suggested"], line=dict(color=VAL_COLOR, dash="dash"),
                     annotation_text=f"suggested {suggestion['suggested']:.1e}", annotation_position="top left")
    finite = [v for v in result["smoothed"] if v is not None and math.isfinite(v)]
    if finite:  # the blow-up at the end would flatten the interesting part
        figure.update_yaxes(range=[min(finite) * 0.9, min(max(finite), 3 * finite[0]) * 1.05])
    figure.update_xaxes(type="log", title="learning rate", exponentformat="e")
    figure.update_yaxes(title="training loss")
    return _layout(figure, f"Learning-rate range test ({result['steps']} batches of {result['batch_size']})", 320)


def nearest_option(value: float, options: Sequence[float]) -> float:
    """The option closest to ``value`` on a log scale (the form's learning-rate slider is discrete)."""
    return min(options, key=lambda option: abs(math.log10(option) - math.log10(value)))


def summary_text(findings: Sequence[Finding]) -> str:
    """"2 problems · 1 warning · 3 notes" (root causes), then "· 2 consequences" when some follow from them."""
    parts = []
    for severity in Severity:
        n = doctor.count(list(findings), severity)
        parts.append(f"{n} {severity.value}{'' if n == 1 else 's'}")
    following = sum(1 for finding in findings if finding.caused_by is not None)
    if following:
        parts.append(f"{following} consequence{'' if following == 1 else 's'} of them")
    return " · ".join(parts)


def finding_label(finding: Finding) -> str:
    """The expander's label: "PROBLEM: title", or "CONSEQUENCE of batchnorm_gap (warning): title" (its icon
    an arrow from the cause)."""
    if finding.caused_by is not None:
        return f"CONSEQUENCE of {finding.caused_by} ({finding.severity.value}): {finding.title}"
    return f"{finding.severity.value.upper()}: {finding.title}"


# ----------------------------------------------------------------- cached reads
@st.cache_data(show_spinner=False, max_entries=256)
def findings(db_url: str, run_id: int, version: tuple) -> list[Finding]:
    """The run's findings; ``version`` (status, epochs done, ...) makes a new epoch recompute them."""
    return doctor.diagnose(open_store(db_url), run_id)


def _rounded(value: Any) -> Any:
    """Evidence for display: floats to 4 significant digits, inside lists and dicts too."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


# ----------------------------------------------------------------- widgets
def problem_badge(found: Sequence[Finding]) -> None:
    problems = doctor.count(list(found), Severity.PROBLEM)
    warnings = doctor.count(list(found), Severity.WARNING)
    if problems:
        st.badge(f"doctor: {problems} problem{'s' if problems > 1 else ''}", color="red", icon=":material/stethoscope:")
    elif warnings:
        st.badge(f"doctor: {warnings} warning{'s' if warnings > 1 else ''}", color="orange",
                 icon=":material/stethoscope:")
    else:
        st.badge("doctor: no problem", color="green", icon=":material/stethoscope:")


def findings_panel(found: Sequence[Finding], key: str,
                   action: Callable[[Finding, str], None] | None = None) -> None:
    """Every finding in an expander (problems open) with its suggestion, evidence chart and numbers, and
    ``action(finding, key)`` drawn at its end (Inspect's Apply a fix, ui/fix.py)."""
    with st.container(border=True, key=key):
        st.caption(summary_text(found))
        if not found:
            st.success("The doctor found nothing to report.")
        for index, finding in enumerate(found):
            icon = {Severity.PROBLEM: ":material/error:", Severity.WARNING: ":material/warning:",
                    Severity.NOTE: ":material/info:"}[finding.severity]
            consequence = finding.caused_by is not None
            if consequence:
                icon = ":material/subdirectory_arrow_right:"
            root_problem = finding.severity == Severity.PROBLEM and not consequence
            with st.expander(markdown_text(finding_label(finding)), expanded=root_problem, icon=icon):
                st.markdown(("**Why:** " if consequence else "**What to do:** ") + markdown_text(finding.suggestion))
                figure = finding_figure(finding)
                if figure is not None:
                    st.plotly_chart(figure, key=f"{key}_chart_{index}_{finding.id}", config={"displayModeBar": False})
                st.caption("Evidence")
                st.json({name: _rounded(value) for name, value in finding.evidence.items()
                         if name not in ("epochs", "loss", "val_loss", "per_epoch")} | (
                            {"epoch": finding.epoch} if finding.epoch is not None else {}),
                        expanded=root_problem)
                if action is not None and not consequence:  # a consequence is fixed through its root cause
                    action(finding, f"{key}_action_{index}_{finding.id}")


def dataset_check(data: dict[str, Any], class_weight: str, seed: int) -> None:
    """The Train page's dataset check: a button, then the findings of ``engine.doctor.check_dataset``."""
    if st.button("Check the dataset", key="train_doctor_check", icon=":material/fact_check:"):
        try:
            with st.spinner("Checking splits, duplicates and volumes..."):
                st.session_state["train_doctor_findings"] = (data["dataset"], doctor.check_dataset(
                    data["dataset"], data["options"], val_fraction=data["val_fraction"],
                    test_fraction=data["test_fraction"], seed=seed, class_weight=class_weight))
        except (LabError, ValueError) as e:
            st.error(str(e))
    checked = st.session_state.get("train_doctor_findings")
    if checked and checked[0] == data["dataset"]:
        findings_panel(checked[1], key="train_doctor_panel")


def lr_find(config_dict: dict[str, Any], options: Sequence[float], disabled: bool) -> None:
    """The Train page's learning-rate range test (in a subprocess) and a button that applies its suggestion."""
    if st.button("Find a learning rate", key="train_lr_find", icon=":material/query_stats:", disabled=disabled,
                 help="An exponential sweep of the rate over at most 100 batches from fresh weights; recorded as "
                 "a run named lr-find."):
        try:
            with st.spinner("Sweeping the learning rate (tens of seconds)..."):
                st.session_state["train_lr_find_result"] = probe.find_learning_rate(config_dict)
        except LabError as e:
            st.error(str(e))
    result = st.session_state.get("train_lr_find_result")
    if not result:
        return
    st.plotly_chart(lr_find_figure(result), key="train_lr_find_chart", config={"displayModeBar": False})
    suggested = result["suggestion"]["suggested"]
    choice = nearest_option(suggested, options)
    st.caption(f"Run #{result['run_id']}: suggested {suggested:.2e} (steepest fall of the smoothed loss); "
               f"the loss was lowest at {result['suggestion']['minimum']:.2e}.")
    st.button(f"Use {choice:.0e}", key="train_lr_use", icon=":material/check:",
              on_click=lambda: st.session_state.update(train_learning_rate=choice))
