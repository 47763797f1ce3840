"""A finding: what the doctor saw in a run or a dataset, with its evidence and what to do about it.

Findings are plain, frozen records so the CLI can print them as JSON and the
pages can draw them without knowing how they were computed. The evidence holds
numbers (and the epochs they come from) plus, for a chart, the series it draws.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    """How much a finding matters: a problem invalidates the result, a warning weakens it, a note informs."""

    PROBLEM = "problem"
    WARNING = "warning"
    NOTE = "note"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def color(self) -> str:
        """The ``st.badge`` colour."""
        return _COLOR[self]


_RANK = {Severity.PROBLEM: 0, Severity.WARNING: 1, Severity.NOTE: 2}
_COLOR = {Severity.PROBLEM: "red", Severity.WARNING: "orange", Severity.NOTE: "blue"}

# Diagnostics the worker records next to the run's metrics: rows of this kind (no schema change).
CHECK_KIND = "check"
# Written at the start of training (epoch 0).
PARAMS_CHECK = "params"
STEPS_PER_EPOCH_CHECK = "steps_per_epoch"
# Written after training, at the last completed epoch: the validation set evaluated with BatchNorm in
# inference mode (moving statistics) and in training mode (the statistics of each batch).
BN_ACCURACY_INFERENCE = "bn_val_accuracy_inference"
BN_ACCURACY_BATCH = "bn_val_accuracy_batch_stats"
BN_LOSS_INFERENCE = "bn_val_loss_inference"
BN_LOSS_BATCH = "bn_val_loss_batch_stats"
# An lr-find record: the suggested rate (its curve lies in the run folder, LR_FIND_FILE).
LR_FIND_SUGGESTION = "lr_find_suggested_lr"
LR_FIND_FILE = "lr_find.json"


@dataclass(frozen=True)
class Finding:
    """One diagnosis: ``id`` names the check (e.g. "overfitting"), ``evidence`` holds its numbers."""

    id: str
    severity: Severity
    title: str
    suggestion: str
    evidence: dict[str, Any] = field(default_factory=dict)
    # The epoch the evidence points at (None for data findings).
    epoch: int | None = None
    # The id of the higher finding that explains this one (see ``link_consequences``): it is shown as a
    # consequence of that root cause, not as a problem of its own, and its own remedy is not offered.
    caused_by: str | None = None

    @property
    def is_consequence(self) -> bool:
        return self.caused_by is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "severity": self.severity.value, "title": self.title, "epoch": self.epoch,
            "evidence": self.evidence, "suggestion": self.suggestion, "caused_by": self.caused_by,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Finding":
        # Findings stored before root causes were linked have no "caused_by": they read as root causes.
        return cls(id=raw["id"], severity=Severity(raw["severity"]), title=raw["title"],
                   suggestion=raw["suggestion"], evidence=dict(raw.get("evidence") or {}), epoch=raw.get("epoch"),
                   caused_by=raw.get("caused_by"))


# The root-cause order: a finding higher in this list can explain one lower down, never the reverse.
# Divergence and input scale first (nothing else means anything while the loss explodes), then the split
# and leakage (the validation numbers cannot be trusted), then the BatchNorm gap, collapse, and last
# how well the model fits (overfitting, or underfitting when it never learned).
ROOT_CAUSE_ORDER = (
    "input_scale", "divergence",
    "single_class_split", "duplicates_across_splits", "near_duplicates", "groups_across_splits",
    "batchnorm_gap",
    "collapse",
    "overfitting", "underfitting",
)
# For each finding, the higher findings that explain it when they are problems. The first one present
# (in ROOT_CAUSE_ORDER) is named as its cause. Why each link holds:
# - inputs far from unit scale make the loss explode and the updates swing (divergence, flat loss),
#   and a run that diverged answers one class and fits nothing (collapse, over/underfitting, chance);
# - the BatchNorm gap makes the inference-mode model answer one class and score far below its
#   training-mode self, which reads as collapse and as overfitting;
# - a collapse onto one class scores at chance.
CONSEQUENCE_OF = {
    "divergence": ("input_scale",),
    "flat_loss": ("input_scale",),
    "oscillation": ("input_scale",),
    "collapse": ("input_scale", "divergence", "batchnorm_gap"),
    "overfitting": ("input_scale", "divergence", "batchnorm_gap"),
    "underfitting": ("input_scale", "divergence"),
    "chance": ("input_scale", "divergence", "single_class_split", "batchnorm_gap", "collapse"),
}


def _cause_rank(finding_id: str) -> int:
    return ROOT_CAUSE_ORDER.index(finding_id) if finding_id in ROOT_CAUSE_ORDER else len(ROOT_CAUSE_ORDER)


def consequence_suggestion(cause: Finding) -> str:
    """What a consequence says instead of its own remedy."""
    return (f"A consequence of '{cause.id}' (the {cause.severity.value} above): apply its fix first and train "
            "again before treating this one on its own.")


def link_consequences(findings: list[Finding]) -> list[Finding]:
    """Each finding that a higher problem explains (``CONSEQUENCE_OF``) gets ``caused_by`` (the root cause,
    following chains: a chance-level score from a collapse that the BatchNorm gap explains names the gap) and
    the cause's fix instead of its own advice. Notes are never linked."""
    present = {finding.id: finding for finding in findings if finding.severity == Severity.PROBLEM}
    by_id = {finding.id: finding for finding in findings}

    def root(finding_id: str, seen: tuple[str, ...] = ()) -> str | None:
        causes = [cause for cause in CONSEQUENCE_OF.get(finding_id, ()) if cause in present and cause not in seen]
        if not causes:
            return None
        cause = min(causes, key=_cause_rank)
        return root(cause, seen + (finding_id,)) or cause

    linked = []
    for finding in findings:
        cause = None if finding.severity == Severity.NOTE or finding.caused_by else root(finding.id)
        if cause is None:
            linked.append(finding)
            continue
        linked.append(dataclasses.replace(finding, caused_by=cause, suggestion=consequence_suggestion(by_id[cause])))
    return linked


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Root causes by severity (problems, warnings, notes), within a severity in the root-cause order; each
    consequence right after the finding it follows from."""
    roots = sorted((f for f in findings if f.caused_by is None), key=lambda f: (f.severity.rank, _cause_rank(f.id)))
    ordered: list[Finding] = []
    for finding in roots:
        ordered.append(finding)
        ordered.extend(sorted((f for f in findings if f.caused_by == finding.id),
                              key=lambda f: (_cause_rank(f.id), f.severity.rank)))
    placed = {id(f) for f in ordered}
    return ordered + [f for f in findings if id(f) not in placed]  # a cause that is not in the list


def count(findings: list[Finding], severity: Severity) -> int:
    """Findings of ``severity`` that are problems of their own (consequences of another finding are not)."""
    return sum(1 for finding in findings if finding.severity == severity and finding.caused_by is None)


def consequences(findings: list[Finding]) -> int:
    return sum(1 for finding in findings if finding.caused_by is not None)
