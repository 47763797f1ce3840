"""Predict new scans with a finished run's model (or a group's ensemble): probabilities, class, TTA, saliency.

Imports Keras inside the functions; only engine processes call it (the CLI's
``predict``; the dashboard runs ``python -m engine predict ... --json`` as a
subprocess). The model is the run's ``best.keras``: the weights its test
predictions were made with, so a scan of the test split gets the probabilities
stored for it.

Test-time augmentation (``tta``) predicts ``tta`` views of each scan and
reports their mean (the prediction) and standard deviation per class. The
views are the identity followed by the flips and in-plane 90° rotations the
run's own augmentation used in training, in the fixed order of
``engine.inference.views``. A run trained without those augmentations has no
views to offer and ``tta`` > 1 is refused with a sentence.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from engine import models
from engine.weights import checkpoints
from engine.errors import DataError, LabError
from engine.evaluation import ensemble as ensemble_module
from engine.evaluation import metrics
from engine.evaluation import saliency as saliency_module
from engine.inference import inputs as inputs_module
from engine.inference.views import choose_views
from engine.runs import RunRecord
from engine.store import artefacts

# Volumes per model call.
BATCH_SIZE = 8


def load_model(run: RunRecord):
    """The run's best weights as a Keras model (DataError with a sentence when the checkpoint is unusable)."""
    import keras

    path = artefacts.run_folder(run.id) / checkpoints.BEST
    problem = checkpoints.problem(path)
    if problem:
        raise DataError(f"Run {run.id}'s model {path.name} {problem}, so it cannot predict; train the run again.")
    return keras.models.load_model(path, compile=False)


def model_probabilities(model, volumes: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, C) class probabilities of (N, D, H, W, C) volumes, as training computed its predictions."""
    from engine.training.pipeline import probabilities_from_outputs

    outputs = model.predict(np.asarray(volumes, dtype=np.float32), batch_size=BATCH_SIZE, verbose=0)
    return probabilities_from_outputs(outputs, num_classes).astype(np.float64)


def _saliency(model, run: RunRecord, volume: np.ndarray, target: int) -> np.ndarray:
    """HiResCAM map of one volume for class ``target`` at the stored maps' resolution, scaled to [0, 1]."""
    layer = models.ARCHITECTURES[run.config.model.architecture].last_conv_layer
    cam = saliency_module.grad_cam(model, volume[np.newaxis], np.asarray([target]), layer)[0]
    resampled = np.clip(saliency_module.resample(cam, saliency_module.storage_shape(volume.shape)), 0.0, None)
    peak = float(resampled.max())
    return resampled / peak if peak > 0 else resampled


def predict(
    store,
    sources: list[str | os.PathLike],
    *,
    run_id: int | None = None,
    group: str | None = None,
    tta: int = 1,
    saliency: bool = False,
) -> dict[str, Any]:
    """Predict every scan in ``sources`` with run ``run_id`` or the ensemble of ``group``.

    Returns (a JSON-ready report, the (N, D, H, W, C) volumes as the model took them).

    Per case: ``probabilities`` (the TTA mean over views, averaged over the ensemble's members), the
    ``predicted`` class at the run's threshold, ``tta`` (views, mean, std, per-view probabilities),
    ``members`` (each member's probabilities), ``saliency`` (a map at most 16 voxels an edge, for the
    predicted class, averaged over members), and its ``warnings``.
    """
    if (run_id is None) == (group is None):
        raise LabError("Give a run or an ensemble group (--ensemble GROUP), not both.")
    runs = ensemble_module.members(store, group) if group is not None else [store.get_run(run_id)]
    recipe = inputs_module.recipe_for(runs[0])
    for run in runs[1:]:
        inputs_module.recipe_for(run)  # each member must be finished and its data unchanged
    views_per_run = [choose_views(run, recipe.volume_shape, tta) for run in runs]
    cases, refused = inputs_module.load_cases(recipe, sources)
    num_classes = len(recipe.class_names)
    volumes = np.stack([case.volume for case in cases])
    member_means, member_views, loaded = [], [], []
    for run, views in zip(runs, views_per_run):
        model = load_model(run)
        per_view = np.stack([model_probabilities(model, np.stack([v.apply(x) for x in volumes]), num_classes)
                             for v in views], axis=1)  # (N, V, C)
        member_views.append(per_view)
        member_means.append(per_view.mean(axis=1))
        if saliency:
            loaded.append(model)  # the maps need the ensemble's predicted class: computed below
    probabilities = np.mean(member_means, axis=0)
    predicted = metrics.predicted_labels(probabilities, recipe.threshold, recipe.positive_index)
    saliency_maps = None
    if saliency:
        saliency_maps = []
        for index, case in enumerate(cases):
            member_maps = [_saliency(model, run, case.volume, int(predicted[index])) for model, run in zip(loaded, runs)]
            mean_map = np.mean(member_maps, axis=0)
            peak = float(mean_map.max())
            saliency_maps.append(mean_map / peak if peak > 0 else mean_map)
    report_cases = []
    for index, case in enumerate(cases):
        entry = {
            **case.header(),
            "probabilities": probabilities[index].round(8).tolist(),
            "predicted_index": int(predicted[index]),
            "predicted": recipe.class_names[int(predicted[index])],
            "volume_shape": list(case.volume.shape),
        }
        if tta > 1:
            all_views = np.concatenate([views[index] for views in member_views], axis=0)  # (members x V, C)
            entry["tta"] = {"views": [v.name for v in views_per_run[0]], "mean": probabilities[index].round(8).tolist(),
                            "std": all_views.std(axis=0).round(8).tolist(),
                            "per_view": np.mean([views[index] for views in member_views], axis=0).round(8).tolist()}
        if len(runs) > 1:
            entry["members"] = [{"run_id": run.id, "probabilities": means[index].round(8).tolist()}
                                for run, means in zip(runs, member_means)]
        if saliency_maps is not None:
            entry["saliency"] = {"shape": list(saliency_maps[index].shape),
                                 "map": saliency_maps[index].round(4).tolist(), "method": "hirescam",
                                 "target": recipe.class_names[int(predicted[index])]}
        report_cases.append(entry)
    return {
        "run_ids": [run.id for run in runs],
        "group": group,
        "class_names": recipe.class_names,
        "threshold": recipe.threshold,
        "positive_class": recipe.positive_class,
        "tta": tta,
        "recipe": recipe.preprocessing(),
        "cases": report_cases,
        "refused": refused,
    }, volumes


def format_text(report: dict[str, Any]) -> str:
    """One block per case: probabilities, predicted class, TTA spread, warnings."""
    who = f"ensemble of group {report['group']} (runs {', '.join(map(str, report['run_ids']))})" if report["group"] \
        else f"run {report['run_ids'][0]}"
    lines = [f"{who}, {len(report['cases'])} scan(s)"
             + (f", threshold {report['threshold']:g} on P({report['positive_class']})"
                if report["threshold"] is not None else "")
             + (f", test-time augmentation over {report['tta']} views" if report["tta"] > 1 else "")]
    names = report["class_names"]
    for case in report["cases"]:
        lines.append(f"{case['path']}: {case['predicted']}")
        spread = case.get("tta", {}).get("std")
        for position, (name, p) in enumerate(zip(names, case["probabilities"])):
            lines.append(f"  P({name}) = {p:.4f}" + (f" ± {spread[position]:.4f}" if spread else ""))
        for member in case.get("members", []):
            lines.append(f"  run {member['run_id']}: " + ", ".join(f"{p:.4f}" for p in member["probabilities"]))
        lines += [f"  warning: {warning}" for warning in case["warnings"]]
    for path, why in report["refused"].items():
        lines.append(f"refused: {path} {why}")
    return "\n".join(lines)
