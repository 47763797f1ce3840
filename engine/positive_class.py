"""The positive class of a two-class problem: the one sensitivity, ROC / PR and the decision threshold are about.

Two-class metrics are not symmetric: sensitivity is the recall of one class, the
finding a reader looks for (a lesion, a tumour, a malignancy), and specificity is
the recall of the other. Before positive classes were chosen, the lab took the
second class in alphabetical order, which made "lesion" / "normal" report the
sensitivity for *normal*.

Here, once for the whole lab:
- ``guess`` picks a dataset's positive class from its two class names (the
  import preview, the built-ins, the Train form's default);
- ``resolve`` says which class a run's numbers are for, from what the run
  recorded: its ``data.positive_class``, or, for runs recorded before the field
  existed, the second class (their numbers were computed for it and keep it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Class names (or words in them) that mean "the finding is there".
POSITIVE_WORDS = frozenset({
    "1", "positive", "pos", "abnormal", "abnormality", "lesion", "lesions", "tumor", "tumors", "tumour", "tumours",
    "malignant", "malignancy", "cancer", "cancerous", "carcinoma", "disease", "diseased", "pathology", "pathologic",
    "pathological", "present", "presence", "yes", "true", "case", "cases", "patient", "patients", "affected",
    "methylated", "nodule", "nodules", "mass", "fracture", "fractured", "hemorrhage", "haemorrhage", "bleed",
    "stroke", "infarct", "infarction", "metastasis", "metastases", "glioma", "glioblastoma", "gbm", "hgg",
    "alzheimer", "alzheimers", "ad", "dementia", "mci", "covid", "pneumonia", "sick", "ill", "event", "death",
    "dead", "recurrence", "progression", "responder", "high",
})
# Class names (or words in them) that mean "no finding": never the positive class when the other name is neutral.
NEGATIVE_WORDS = frozenset({
    "0", "negative", "neg", "normal", "healthy", "benign", "control", "controls", "hc", "cn", "nc", "absent",
    "absence", "no", "none", "false", "unmethylated", "clean", "clear", "background", "unaffected", "non",
    "not", "without", "free", "alive", "survivor", "nonresponder", "low", "lgg", "other", "rest",
})
# A name starting with one of these denies what follows ("no_lesion", "non-tumour", "not malignant").
NEGATIONS = ("no", "non", "not", "without", "un", "anti")

_WORD = re.compile(r"[a-z0-9]+")


def _words(name: str) -> list[str]:
    # "MGMT+" -> ["mgmt"] plus its sign; camelCase and snake_case split into words.
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(name))
    return _WORD.findall(spaced.casefold())


def _score(name: str) -> int:
    """+1 when ``name`` reads as a finding, -1 as its absence, 0 when it says neither."""
    text = str(name).strip()
    number = _number(text)
    if number is not None:
        return 1 if number == 1 else -1 if number == 0 else 0
    if text.endswith("+"):
        return 1
    if text.endswith("-") or text.endswith("−"):
        return -1
    words = _words(text)
    if not words:
        return 0
    if words[0] in NEGATIONS and len(words) > 1:
        return -1
    if any(words[0].startswith(prefix) and words[0][len(prefix):] in POSITIVE_WORDS for prefix in NEGATIONS):
        return -1  # one word: "nonlesion", "notumour"
    if any(word in NEGATIVE_WORDS for word in words):
        return -1
    if any(word in POSITIVE_WORDS for word in words):
        return 1
    return 0


def _number(name: str) -> float | None:
    try:
        return float(str(name).strip())
    except ValueError:
        return None


def guess(class_names: Sequence[str]) -> str | None:
    """The positive class of two classes, guessed from their names; None unless there are exactly two.

    A name that reads as a finding ("lesion", "tumour", "malignant", "MGMT+", "1") wins over one
    that reads as its absence ("normal", "healthy", "benign", "control", "0"); of two numbers the
    larger one wins ("-1" / "1"); when the names say nothing, the second class (alphabetical order,
    as before positive classes were chosen) is the guess.
    """
    names = [str(name) for name in class_names]
    if len(names) != 2:
        return None
    first, second = names
    numbers = [_number(name) for name in names]
    if None not in numbers and numbers[0] != numbers[1]:
        return first if numbers[0] > numbers[1] else second
    scores = [_score(name) for name in names]
    if scores[0] > scores[1]:
        return first
    return second


def resolve(class_names: Sequence[str], recorded: str | None) -> str | None:
    """The class a run's two-class numbers are for: ``recorded`` (its data.positive_class) when it names one of
    the two classes, else the second class (runs recorded before the field existed were computed for it).

    None when there are not exactly two classes (multi-class metrics have no positive class).
    """
    names = [str(name) for name in class_names]
    if len(names) != 2:
        return None
    if recorded is not None and str(recorded) in names:
        return str(recorded)
    return names[1]


def problem(class_names: Sequence[str], positive_class: str | None, field: str = "data.positive_class") -> str | None:
    """A sentence when ``positive_class`` cannot be the positive class of these classes; None when it can."""
    if positive_class is None:
        return None
    names = [str(name) for name in class_names]
    if len(names) != 2:
        return (f"{field} is {str(positive_class)[:80]!r}, but a positive class applies to two-class datasets only "
                f"(this one has {len(names)}); leave it empty.")
    if str(positive_class) not in names:
        return f"{field} is {str(positive_class)[:80]!r}; choose one of the two classes, {names[0]!r} or {names[1]!r}."
    return None


__all__ = ["NEGATIVE_WORDS", "POSITIVE_WORDS", "guess", "problem", "resolve"]
