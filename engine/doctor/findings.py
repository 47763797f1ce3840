"""A finding: what the doctor saw in a run or a dataset, with its evidence and what to do about it.

Findings are plain, frozen records so the CLI can print them as JSON and the
pages can draw them without knowing how they were computed. The evidence holds
numbers (and the epochs they come from) plus, for a chart, the series it draws.
"""

from __future__ import annotations

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "severity": self.severity.value, "title": self.title, "epoch": self.epoch,
            "evidence": self.evidence, "suggestion": self.suggestion,
        }


    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Finding":
        return cls(id=raw["id"], severity=Severity(raw["severity"]), title=raw["title"],
                   suggestion=raw["suggestion"], evidence=dict(raw.get("evidence") or {}), epoch=raw.get("epoch"))


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Problems first, then warnings, then notes (stable within a severity)."""
    return sorted(findings, key=lambda finding: finding.severity.rank)


def count(findings: list[Finding], severity: Severity) -> int:
    return sum(1 for finding in findings if finding.severity == severity)
