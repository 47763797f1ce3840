"""Validation of a whole run configuration: its fields, and what the registries say about them.

This module owns both registries (datasets and architectures), so
``engine.config`` does not have to import them (which made a circle:
the model registry imports ``ModelConfig``). Every launch path (the CLI, the
Train page, ``jobs.launch``) validates here. Problems come back structured
(``Problem(field, message)``), so a form places each next to its field.
"""

from __future__ import annotations

from engine import datasets, models, positive_class
from engine.weights import warm_start
from engine.config import RunConfig
from engine.errors import ConfigError, Problem


def problems(config: RunConfig) -> list[Problem]:
    """Every problem of ``config``: bad fields first, then unknown names, then whether the preset fits the data."""
    found = config.field_problems()
    fields_with_problems = {problem.field for problem in found}
    data, model = config.data, config.model
    known_datasets = datasets.dataset_names()
    dataset_known = data.dataset in known_datasets
    if "data.dataset" not in fields_with_problems and not dataset_known:
        found.append(Problem(
            "data.dataset", f"data.dataset is {data.dataset!r}; valid datasets are {', '.join(known_datasets)}."
        ))
    if dataset_known and isinstance(data.options, dict):
        found.extend(datasets.validate_options(data.dataset, data.options))
    known_archs = models.architecture_names()
    if "model.architecture" not in fields_with_problems and model.architecture not in known_archs:
        found.append(Problem(
            "model.architecture",
            f"model.architecture is {model.architecture!r}; valid architectures are {', '.join(known_archs)}.",
        ))
    elif model.padding is not None and "model.padding" not in fields_with_problems:
        paddings = models.ARCHITECTURES[model.architecture].paddings
        if model.padding not in paddings:
            found.append(Problem(
                "model.padding",
                f"model.padding is {model.padding!r}; {model.architecture} always uses "
                f"{' or '.join(repr(p) for p in paddings)} padding, so leave it unset.",
            ))
    if dataset_known and data.positive_class is not None and "data.positive_class" not in fields_with_problems \
            and not any(problem.field.startswith("data.options") for problem in found):
        class_names = datasets.dataset_info(data.dataset, data.options)["class_names"]
        sentence = positive_class.problem(class_names, data.positive_class)
        if sentence:
            found.append(Problem("data.positive_class", sentence))
    if model.architecture in known_archs:
        found.extend(warm_start.freeze_problems(config))
    if not found:
        # Everything named is known and in range: can the preset take this dataset's volumes?
        info = datasets.dataset_info(data.dataset, data.options)
        try:
            models.check_input(
                model.architecture, tuple(info["volume_shape"]), info["num_classes"], model,
                batch_size=config.training.batch_size,
            )
        except ConfigError as e:
            found.extend(e.problems)
    return found


def validate(config: RunConfig) -> RunConfig:
    """Return ``config`` when it can run; otherwise raise one ``ConfigError`` naming every problem."""
    found = problems(config)
    if found:
        raise ConfigError(found)
    return config


__all__ = ["problems", "validate"]
