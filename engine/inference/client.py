"""What the dashboard asks of a trained model, answered by ``python -m engine`` in a subprocess (no TensorFlow here).

Predicting and exporting load Keras; the dashboard process never imports it,
so ``predict``, ``export`` and ``report`` run the CLI as a child process and
read its JSON. ``models`` lists what can predict (finished runs, and groups
with at least two finished runs as ensembles) and ``validation_reference``
the validation probabilities a new case is compared with; both read the store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import paths
from engine.errors import LabError
from engine.evaluation import ensemble
from engine.inference.inputs import recipe_for
from engine.inference.views import tta_views
from engine.runs import RunRecord, RunStatus

# TensorFlow start-up, model loading and a few scans (saliency and TTA included).
PREDICT_TIMEOUT_S = 300
EXPORT_TIMEOUT_S = 300
REPORT_TIMEOUT_S = 300
GROUP_PREFIX = "group:"


@dataclass(frozen=True)
class Model:
    """Something that can predict: one finished run, or a group's ensemble."""

    key: str  # "7" for run 7, "group:cv-1a2b3c" for an ensemble
    label: str
    run: RunRecord  # the run (the first member of an ensemble)
    group: str | None = None


def max_tta(model: Model) -> int:
    """How many test-time views the run's augmentation allows (1: none but the scan itself)."""
    return len(tta_views(model.run, recipe_for(model.run).volume_shape))


def models(store) -> list[Model]:
    """Finished runs (newest first), then every group with at least two finished runs of one configuration."""
    finished = store.list_runs(statuses=[RunStatus.FINISHED], archived=False)
    found = [Model(str(run.id), f"{run.label} · {run.architecture} on {run.dataset}", run) for run in finished]
    for group in sorted({run.group for run in finished if run.group}):
        try:
            members = ensemble.members(store, group)
        except LabError:
            continue
        found.append(Model(GROUP_PREFIX + group, f"ensemble {group} · {len(members)} runs · "
                           f"{members[0].architecture} on {members[0].dataset}", members[0], group))
    return found


def find_model(store, key: str | None) -> Model | None:
    """The model named by ``key`` (a run id or "group:ID", e.g. CONV3D_LAB_DEMO_MODEL), or None."""
    if not key:
        return None
    key = key.strip()
    key = key if key.startswith(GROUP_PREFIX) or key.isdigit() else GROUP_PREFIX + key
    return next((model for model in models(store) if model.key == key), None)


def _run_cli(arguments: list[str], timeout_s: int, what: str) -> str:
    command = [sys.executable, "-m", "engine", *arguments]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        result = subprocess.run(command, cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True,
                                timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"The {what} took longer than {timeout_s} s and was stopped; try fewer or smaller scans.") from e
    if result.returncode == 2:
        raise LabError(result.stderr.strip().splitlines()[-1].removeprefix("error: ") if result.stderr.strip()
                       else f"The {what} was refused.")
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1:] or ["no message"]
        raise LabError(f"The {what} failed ({last[0][:300]}).")
    return result.stdout.strip().splitlines()[-1]


def predict(model: Model, sources: list[str | os.PathLike], *, tta: int = 1, saliency: bool = False
            ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``python -m engine predict ... --json`` in a subprocess: (its report, {"volumes", "saliency"} arrays)."""
    target = ["--ensemble", model.group] if model.group else [str(model.run.id)]
    with tempfile.TemporaryDirectory(prefix=".predict-", dir=paths.lab_home()) as folder:
        arrays_path = Path(folder) / "arrays.npz"
        arguments = ["predict", *target, *map(str, sources), "--json", "--tta", str(int(tta)),
                     "--arrays", str(arrays_path)] + (["--saliency"] if saliency else [])
        report = json.loads(_run_cli(arguments, PREDICT_TIMEOUT_S, "prediction"))
        with np.load(arrays_path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in saved.files}
    return report, arrays


def export(run_id: int, fmt: str) -> bytes:
    """``python -m engine export RUN --format FMT --out X.zip`` in a subprocess: the zip's bytes."""
    with tempfile.TemporaryDirectory(prefix=".export-", dir=paths.lab_home()) as folder:
        target = Path(folder) / f"run{run_id}-{fmt}.zip"
        _run_cli(["export", str(run_id), "--format", fmt, "--out", str(target), "--json"], EXPORT_TIMEOUT_S, "export")
        return target.read_bytes()


def report(run_id: int) -> bytes:
    """``python -m engine report RUN`` in a subprocess: the HTML file's bytes."""
    with tempfile.TemporaryDirectory(prefix=".report-", dir=paths.lab_home()) as folder:
        target = Path(folder) / f"run{run_id}-report.html"
        _run_cli(["report", str(run_id), "--out", str(target), "--json"], REPORT_TIMEOUT_S, "report")
        return target.read_bytes()


def validation_reference(store, model: Model) -> dict[str, Any]:
    """The validation probabilities a new case is compared with: {"labels" (N,), "probabilities" (N, C), "note"}.

    One run: its validation predictions at its best epoch. An ensemble: every member's at its best epoch,
    together (the folds of a cross-validation then cover each training sample once, out of fold).
    """
    runs = ensemble.members(store, model.group) if model.group else [model.run]
    labels, probabilities = [], []
    for run in runs:
        epochs = store.prediction_epochs(run.id, "val")
        if not epochs:
            continue
        epoch = run.best_epoch if run.best_epoch in epochs else epochs[-1]
        stored = store.get_predictions(run.id, "val", epoch)
        labels.append(np.asarray(stored["labels"]))
        probabilities.append(np.asarray(stored["probabilities"], dtype=np.float64))
    if not labels:
        return {"labels": np.zeros(0, np.int64), "probabilities": np.zeros((0, len(model.run.class_names))),
                "note": "no validation predictions are stored"}
    note = ("validation predictions at the best epoch" if len(runs) == 1 else
            f"the {len(runs)} members' validation predictions at their best epochs (each member's own model)")
    return {"labels": np.concatenate(labels), "probabilities": np.concatenate(probabilities), "note": note}
