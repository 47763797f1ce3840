"""argparse types for the CLI's numbers: a value out of range is a usage error (one sentence, exit 2).

Without them ``show 999999999999999999999`` reached SQLite and raised
OverflowError, and ``describe --batch-size -1`` was accepted.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.errors import ConfigError

# SQLite stores integers in 8 bytes; a larger id cannot name a run (nor an epoch).
MAX_ID = 2**63 - 1


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def run_id(text: str) -> int:
    """A run id: a whole number from 1 to MAX_ID."""
    value = _whole_number(text)
    if not 1 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text} is not a run id (run ids go from 1 to {MAX_ID})")
    return value


def positive_int(text: str) -> int:
    """A count such as a batch size or a number of classes: at least 1 (and at most MAX_ID)."""
    value = _whole_number(text)
    if not 1 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text} must be a whole number from 1 to {MAX_ID}")
    return value


def epoch(text: str) -> int:
    """An epoch number: 0 to MAX_ID."""
    value = _whole_number(text)
    if not 0 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text} is not an epoch number (0 to {MAX_ID})")
    return value


def dataset_options(texts: list[str]) -> dict[str, Any]:
    """The repeatable ``--option KEY=VALUE`` (a dataset knob) as a dict; a value is JSON where it parses, else
    the text. A text without "=" is a ConfigError with the sentence that says what to write."""
    options: dict[str, Any] = {}
    for text in texts:
        if "=" not in text:
            raise ConfigError([f"--option {text!r} must look like KEY=VALUE, e.g. --option num_samples=200."])
        key, raw = text.split("=", 1)
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options
