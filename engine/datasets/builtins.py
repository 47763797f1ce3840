"""The built-in datasets: their generators, knobs (``Option``) and class names.

Deterministic by seed and offline; ``engine.datasets`` loads them through the
disk cache. A module of its own so the importer can refuse a built-in's name
without importing the package that imports it.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.datasets import generators


@dataclass(frozen=True)
class Option:
    """One knob of a dataset: its default and allowed values."""

    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    integer: bool = False
    optional: bool = False  # None allowed (means "all" / "not set")
    label: str | None = None  # the form's label, when the knob's name alone would be ambiguous

    def problem(self, field_name: str, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        if self.choices is not None:
            if value not in self.choices:
                return f"{field_name} is {value!r}; it must be one of {', '.join(self.choices)}."
            return None
        kind = "a whole number" if self.integer else "a number"
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
            self.integer and not float(value).is_integer()
        ):
            return f"{field_name} is {value!r}; it must be {kind} between {self.minimum:g} and {self.maximum:g}."
        if not self.minimum <= value <= self.maximum:
            return f"{field_name} is {value!r}; it must be {kind} between {self.minimum:g} and {self.maximum:g}."
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "default": self.default, "help": self.help, "min": self.minimum, "max": self.maximum,
            "choices": list(self.choices) if self.choices else None, "integer": self.integer, "label": self.label,
        }


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    description: str
    generator: Callable[[dict], generators.Generated]
    options: dict[str, Option]
    class_names: Callable[[dict], list[str]]
    volume_edge: Callable[[dict], int] = field(default=lambda options: int(options["size"]))
    # How many volumes the generator makes with these (resolved) options, known without generating.
    sample_count: Callable[[dict], int] = field(default=lambda options: int(options["num_samples"]))
    # Two classes: the class sensitivity and the threshold are about; None guesses it from the names.
    positive_class: str | None = None
    # The imaging modality the volumes imitate ("CT", "MR"), None for abstract shapes; `plan` picks the
    # intensity normalisation from it.
    modality: str | None = None

    def defaults(self) -> dict[str, Any]:
        return {name: option.default for name, option in self.options.items()}


# scikit-learn's handwritten digits: the source images of digits3d.
DIGITS_SOURCE_COUNT = 1797


def _seed_option() -> Option:
    return Option(
        0, "Seed of the generator: the same seed gives the same volumes (the run's own seed is separate).",
        0, 2**31 - 1, integer=True, label="Generator seed",
    )


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="digits3d",
            title="3D digits (3D-MNIST style)",
            description=(
                "scikit-learn's 1,797 handwritten digits extruded into point clouds, randomly rotated and "
                "jittered, voxelised into 16^3; 10 classes. The source image is each sample's group."
            ),
            generator=generators.digits3d,
            options={
                "size": Option(16, "Edge of the cubic volume in voxels.", 8, 64, integer=True),
                "copies": Option(1, "Augmented copies per source digit (new rotation and jitter).", 1, 20, integer=True),
                "max_rotation_degrees": Option(20.0, "Largest random rotation about each axis.", 0, 180),
                "jitter": Option(0.01, "Standard deviation of point jitter, in volume widths.", 0, 0.2),
                "num_samples": Option(
                    None, "Use only the first N source digits (all 1,797 when empty).", 20, DIGITS_SOURCE_COUNT,
                    integer=True, optional=True,
                ),
                "seed": _seed_option(),
            },
            class_names=lambda options: [str(digit) for digit in range(10)],
            sample_count=lambda options: (options["num_samples"] or DIGITS_SOURCE_COUNT) * int(options["copies"]),
        ),
        DatasetSpec(
            name="phantom_lesions",
            title="Head phantoms with lesions",
            description=(
                "Binary: procedurally varied head phantoms (skull, brain, ventricles, texture, smooth "
                "deformation, noise and bias field); positives carry 1-3 small bright lesions."
            ),
            generator=generators.phantom_lesions,
            options={
                "num_samples": Option(400, "Number of phantoms.", 20, 20000, integer=True),
                "size": Option(32, "Edge of the cubic volume in voxels.", 16, 128, integer=True),
                "positive_fraction": Option(0.5, "Fraction of phantoms with lesions.", 0.05, 0.95),
                "lesion_contrast": Option(0.5, "Brightness a lesion adds over brain tissue.", 0.02, 2.0),
                "lesion_size": Option(1.0, "Lesion radius relative to the default (2.5 voxels at 32^3).", 0.3, 4.0),
                "noise": Option(0.05, "Standard deviation of Gaussian noise.", 0.0, 0.5),
                "seed": _seed_option(),
            },
            class_names=lambda options: ["healthy", "lesion"],
            positive_class="lesion",
            # Brain tissue in air with a smooth bias field and no fixed intensity unit: MR-like.
            modality="MR",
        ),
        DatasetSpec(
            name="shapes3d",
            title="Tiny 3D shapes (for tests)",
            description=(
                "Tiny and trivially separable: a cube or a ball (mode 'shape'), or the same cube in the left "
                "or right half of the volume (mode 'location')."
            ),
            generator=generators.shapes3d,
            options={
                "num_samples": Option(96, "Number of volumes.", 8, 20000, integer=True),
                "size": Option(12, "Edge of the cubic volume in voxels.", 6, 64, integer=True),
                "mode": Option("shape", "What separates the two classes.", choices=("shape", "location")),
                "noise": Option(0.05, "Standard deviation of Gaussian noise.", 0.0, 1.0),
                "seed": _seed_option(),
            },
            class_names=lambda options: ["cube", "ball"] if options["mode"] == "shape" else ["left", "right"],
        ),
    )
}
