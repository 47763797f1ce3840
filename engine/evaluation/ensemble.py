"""A fold or seed group as one model: the mean of its members' class probabilities.

The members are the group's finished runs of one configuration (the k folds of
a cross-validation, or the seeds of a seed group). Their test predictions are
in the store, so the ensemble's test metrics need no model: the members'
stored probabilities are averaged sample by sample. The folds of a
cross-validation share one held-out test split; the runs of a seed group each
split with their own seed, so their ensemble is evaluated on the test samples
all members share (and says how many that is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import LabError
from engine.evaluation.report import Evaluation, class_names_of, evaluate_predictions
from engine.runs import RunRecord, RunStatus


class EnsembleError(LabError):
    """A group that cannot be used as an ensemble."""


def members(store, group: str) -> list[RunRecord]:
    """The finished runs of ``group``, ordered by fold then seed; EnsembleError with a sentence otherwise."""
    runs = store.list_runs(group=group)
    if not runs:
        raise EnsembleError(f"There is no group {str(group)[:80]!r}; `python -m engine runs` shows each run's group.")
    trials = {run.trial for run in runs}
    if len(trials) > 1:
        raise EnsembleError(
            f"Group {group} is a sweep of {len(trials)} configurations; an ensemble averages the folds or seeds of "
            "one configuration, so give a cross-validation or seed group (or one run)."
        )
    finished = [run for run in runs if run.status == RunStatus.FINISHED]
    if len(finished) < 2:
        raise EnsembleError(
            f"Group {group} has {len(finished)} finished run(s) of {len(runs)}; an ensemble needs at least two "
            "(wait for the others to finish)."
        )
    first = finished[0]
    for run in finished[1:]:
        if run.dataset_fingerprint != first.dataset_fingerprint or list(run.class_names) != list(first.class_names):
            raise EnsembleError(f"Runs {first.id} and {run.id} of group {group} were trained on different data; "
                                "they cannot be averaged.")
    return sorted(finished, key=lambda r: (r.config.data.fold or 0, r.config.training.seed, r.id))


@dataclass
class EnsembleEvaluation:
    group: str
    run_ids: list[int]
    members: list[Evaluation]  # each member's test evaluation, on its own test split
    ensemble: Evaluation  # the mean probabilities on the test samples every member holds
    shared_samples: int

    def to_dict(self) -> dict[str, Any]:
        def short(evaluation: Evaluation) -> dict[str, Any]:
            return {key: value for key, value in evaluation.to_dict().items() if key not in ("roc", "pr")}

        return {"group": self.group, "run_ids": self.run_ids, "shared_samples": self.shared_samples,
                "members": [short(e) for e in self.members], "ensemble": short(self.ensemble)}


def evaluate_ensemble(store, group: str, threshold: float | None = None) -> EnsembleEvaluation:
    """Each member's test metrics and the ensemble's (mean probabilities), at ``threshold`` for two classes."""
    runs = members(store, group)
    class_names = class_names_of(runs[0])
    positive = runs[0].positive_class
    if any(run.positive_class != positive for run in runs):
        raise EnsembleError(f"The runs of group {group} do not share one positive class, so their probabilities "
                            "cannot be averaged into one two-class ensemble.")
    evaluations, stored = [], []
    for run in runs:
        predictions = store.get_predictions(run.id, "test")
        if predictions is None:
            raise EnsembleError(f"Run {run.id} of group {group} has no test predictions.")
        stored.append(predictions)
        evaluation = evaluate_predictions(predictions["labels"], predictions["probabilities"], class_names, threshold,
                                          sample_ids=predictions["sample_ids"], positive_class=positive)
        evaluation.run_id, evaluation.split, evaluation.epoch = run.id, "test", int(predictions["epoch"])
        evaluations.append(evaluation)
    shared = sorted(set.intersection(*(set(np.asarray(p["sample_ids"]).tolist()) for p in stored)))
    if not shared:
        raise EnsembleError(f"The runs of group {group} share no test sample, so the ensemble cannot be evaluated.")
    probabilities, labels = [], None
    for predictions in stored:
        position = {int(sample): index for index, sample in enumerate(predictions["sample_ids"])}
        rows = [position[sample] for sample in shared]
        probabilities.append(np.asarray(predictions["probabilities"], dtype=np.float64)[rows])
        labels = np.asarray(predictions["labels"])[rows]
    ensemble = evaluate_predictions(labels, np.mean(probabilities, axis=0), class_names, threshold,
                                    sample_ids=np.asarray(shared), positive_class=positive)
    ensemble.split = "test"
    return EnsembleEvaluation(group, [run.id for run in runs], evaluations, ensemble, len(shared))


def format_text(result: EnsembleEvaluation) -> str:
    """One line per member and one for the ensemble: samples, accuracy, balanced accuracy, ROC AUC, loss."""
    def line(label: str, evaluation: Evaluation) -> str:
        auc = "-" if evaluation.roc_auc is None else f"{evaluation.roc_auc:.4f}"
        balanced = "undefined" if evaluation.balanced_accuracy is None else f"{evaluation.balanced_accuracy:.4f}"
        return (f"{label:<14}{len(evaluation.labels):>8}{evaluation.accuracy:>10.4f}{balanced:>10}"
                f"{auc:>10}{evaluation.mean_loss:>10.4f}")

    lines = [f"group {result.group}: test metrics of {len(result.run_ids)} members and their ensemble "
             "(mean probabilities)", f"{'':<14}{'samples':>8}{'accuracy':>10}{'bal.acc':>10}{'roc auc':>10}{'loss':>10}"]
    for evaluation in result.members:
        lines.append(line(f"run {evaluation.run_id}", evaluation))
    lines.append(line("ensemble", result.ensemble))
    if any(len(e.labels) != result.shared_samples for e in result.members):
        lines.append(f"(the ensemble is evaluated on the {result.shared_samples} test samples every member holds)")
    return "\n".join(lines)
