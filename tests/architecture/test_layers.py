"""The layers of the code, declared once, and every import (lazy ones included) checked against them.

Bottom to top; a module may import its own layer and the layers below, never one above. A module
belongs to the layer of the longest name in ``LAYERS`` that is a prefix of its own (so
``engine.jobs.worker`` sits above ``engine.jobs``, and ``engine.doctor.cli`` with the commands).
docs/architecture.md shows the same table in words.
"""

from __future__ import annotations

from pathlib import Path

from tests.architecture.test_code_shape import REPO_ROOT, _imports, _module_name

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("vocabulary", (
        "engine", "engine.errors", "engine.settings", "engine.paths", "engine.config", "engine.runs",
        "engine.statistics", "engine.positive_class", "engine.argtypes", "engine.actors",
        "engine.weights",  # checkpoints and warm starts: files read and written without Keras
        "engine.machine",  # devices (slots, CUDA_VISIBLE_DEVICES), memory, execution: below training and jobs
    )),
    ("state and building blocks", (
        "engine.store", "engine.datasets", "engine.models", "engine.probe", "engine.validation",
        "engine.hosting",  # a demo's caps and share links
    )),
    ("analysis", ("engine.evaluation", "engine.doctor")),
    ("training", ("engine.training",)),
    ("using runs", ("engine.inference", "engine.compare",
                    "engine.planning")),  # a plan runs a learning-rate test (training)
    ("jobs control", ("engine.jobs",)),
    ("sweeps", ("engine.sweeps",)),
    ("remedies", ("engine.remedies",)),  # a fix queues paired runs (seeds or folds) through jobs and sweeps
    ("worker entry points", ("engine.jobs.worker", "engine.jobs.standby_main")),
    ("commands", (
        "engine.__main__", "engine.cli", "engine.bench", "engine.hosting.cli",
        "engine.datasets.cli", "engine.doctor.cli", "engine.planning.cli", "engine.remedies.cli", "engine.evaluation.cli", "engine.inference.cli",
        "engine.models.cli", "engine.training.cli", "engine.jobs.cli", "engine.sweeps.cli", "engine.compare.cli",
    )),
    ("dashboard widgets", ("ui",)),
    ("dashboard pages", ("app_pages", "streamlit_app")),
]

SOURCES = [*(REPO_ROOT / "engine").rglob("*.py"), *(REPO_ROOT / "ui").rglob("*.py"),
           *(REPO_ROOT / "app_pages").rglob("*.py"), REPO_ROOT / "streamlit_app.py"]


def layer_of(module: str, layers: list[tuple[str, tuple[str, ...]]] = LAYERS) -> int | None:
    """The index of ``module``'s layer (longest declared prefix wins), or None when none is declared."""
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, (_name, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    return None if best is None else best[1]


def upward_imports(graph: dict[str, set[str]], layers: list[tuple[str, tuple[str, ...]]] = LAYERS) -> list[str]:
    """``importer (layer) -> imported (layer)`` for each import that points up the table."""
    found = []
    for module, targets in sorted(graph.items()):
        here = layer_of(module, layers)
        for target in sorted(targets):
            there = layer_of(target, layers)
            if here is not None and there is not None and there > here:
                found.append(f"{module} ({layers[here][0]}) -> {target} ({layers[there][0]})")
    return found


def _graph(paths: list[Path]) -> dict[str, set[str]]:
    names = {_module_name(path): path for path in paths}
    modules = set(names)
    return {name: _imports(path, modules) - {name} for name, path in names.items()}


def test_every_module_has_a_layer():
    missing = sorted(name for name in map(_module_name, SOURCES) if layer_of(name) is None)
    assert missing == [], "modules without a layer (add them to LAYERS in tests/architecture/test_layers.py): " + \
        ", ".join(missing)


def test_imports_point_down_the_layers():
    found = upward_imports(_graph(SOURCES))
    assert found == [], "imports that point up the layers:\n" + "\n".join(found)


def test_training_and_sweeps_import_nothing_from_above():
    """The issue's own words, checked by name: training imports neither jobs nor sweeps; sweeps no worker."""
    graph = _graph(SOURCES)
    training = {t for m, ts in graph.items() if m.startswith("engine.training") for t in ts}
    assert not {t for t in training if t.startswith(("engine.jobs", "engine.sweeps"))}
    sweeps = {t for m, ts in graph.items() if m.startswith("engine.sweeps") for t in ts}
    assert not {t for t in sweeps if t in ("engine.jobs.worker", "engine.jobs.standby_main")}


def test_the_layer_check_finds_an_upward_import_and_the_longest_prefix_wins():
    layers = [("low", ("pkg",)), ("high", ("pkg.top",))]
    assert layer_of("pkg.top.cli", layers) == 1
    assert layer_of("pkg.other", layers) == 0
    graph = {"pkg.other": {"pkg.top"}, "pkg.top": {"pkg.other"}}
    assert upward_imports(graph, layers) == ["pkg.other (low) -> pkg.top (high)"]
