"""Transfer learning in the worker: starting weights, frozen blocks, a lower backbone learning rate.

``prepare_model`` is the one hook ``engine.training.run`` calls after building a fresh model: it loads
the layers of ``training.init_from`` that match by name and shape (engine/weights/warm_start.py decides which),
freezes the first ``training.freeze_blocks`` blocks, writes the match to ``runs/<id>/transfer.json``
and records the lineage (``parent_run``) with the run.

``make_optimizer`` gives the backbone (every layer of the numbered blocks) a learning rate of
``backbone_lr_scale`` times the configured one. Keras 3 has no per-layer learning rate nor a
multi-optimizer, and scaling the gradients instead would not work for Adam (its step does not depend on
the gradient's scale), so the optimizer's ``update_step`` (called once per variable with the current
learning rate) scales the rate for backbone variables (``scale_backbone``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import keras

from engine import paths
from engine.weights import warm_start
from engine.errors import DataError
from engine.runs import RunRecord
from engine.training import recipe

TRANSFER_FILE = "transfer.json"


def prepare_model(store, run: RunRecord, model: keras.Model, class_names: Iterable[str]) -> None:
    """Load ``run``'s starting weights into ``model`` and freeze its first blocks (nothing without init_from)."""
    training = run.config.training
    if training.init_from is None:
        return
    source = warm_start.parse(training.init_from)
    path = warm_start.weights_path(source, store)
    weights = warm_start.read_layer_weights(path)
    keep_output = source.run_id is not None and tuple(store.get_run(source.run_id).class_names) == tuple(class_names)
    target = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in model.layers if layer.weights}
    rows = warm_start.match(target, weights, keep_output=keep_output)
    loaded = [row.layer for row in rows if row.outcome == warm_start.LOADED]
    if not loaded:
        raise DataError(
            f"No layer of {source.label} matches this {run.config.model.architecture} model by name and shape "
            f"({warm_start.summary(rows, source.label)}); start from a run or file of the same architecture and width."
        )
    for name in loaded:
        model.get_layer(name).set_weights(weights[name])
    frozen = freeze(model, training.freeze_blocks)
    record = {
        "init_from": training.init_from,
        "source": str(path),
        "parent_run": source.run_id,
        "frozen_layers": frozen,
        "backbone_lr_scale": training.backbone_lr_scale,
        "layers": [row.to_dict() for row in rows],
    }
    (paths.run_dir(run.id) / TRANSFER_FILE).write_text(json.dumps(record, indent=1))
    store.update_run(run.id, parent_run=source.run_id)
    store.log_event(run.id, warm_start.summary(rows, source.label))
    if frozen:
        store.log_event(run.id, f"frozen: the first {training.freeze_blocks} block(s), {len(frozen)} layers "
                                f"({', '.join(frozen)})")


def freeze(model: keras.Model, blocks: int) -> list[str]:
    """Set ``trainable = False`` on every layer of blocks 1..``blocks``; returns their names.

    A frozen BatchNormalization layer also runs in inference mode in Keras 3, so its moving statistics
    stay as loaded.
    """
    frozen = []
    for layer in model.layers:
        block = warm_start.block_of(layer.name)
        if block is not None and block <= blocks:
            layer.trainable = False
            frozen.append(layer.name)
    return frozen


def backbone_layers(model: keras.Model) -> list[str]:
    """The names of the layers in the architecture's numbered blocks (the head is everything else)."""
    return [layer.name for layer in model.layers if warm_start.block_of(layer.name) is not None]


def make_optimizer(training, rate, model: keras.Model) -> keras.optimizers.Optimizer:
    """The configured optimizer; with ``backbone_lr_scale`` < 1 the backbone's variables step at the lower rate."""
    return scale_backbone(recipe.make_optimizer(training, rate), model, training.backbone_lr_scale)


def scale_backbone(optimizer: keras.optimizers.Optimizer, model: keras.Model, scale: float
                   ) -> keras.optimizers.Optimizer:
    """Make ``optimizer`` step the backbone's variables at ``scale`` x its learning rate; returns it.

    The override is on this optimizer object only (its ``update_step``, which Keras calls once per
    variable with the current rate), not a new optimizer class: a checkpoint saved with it holds a plain
    Adam / SGD / AdamW, so the run's ``.keras`` files load anywhere (``export``), and a resumed run calls
    this again on the optimizer it loaded (its state kept). Under mixed precision the wrapped optimizer
    (``inner_optimizer`` of a LossScaleOptimizer) is the one that steps.
    """
    if scale == 1:
        return optimizer
    stepping = getattr(optimizer, "inner_optimizer", optimizer)
    backbone = frozenset(backbone_layers(model))
    original = stepping.update_step

    def update_step(gradient, variable, learning_rate):
        # The variable handed in may be the backend's (no path); the optimizer's own list has the Keras one,
        # whose path is "<layer name>/<weight name>" in a Functional model.
        tracked = stepping._trainable_variables[stepping._get_variable_index(variable)]
        if tracked.path.split("/")[0] in backbone:
            learning_rate = learning_rate * scale
        return original(gradient, variable, learning_rate)

    stepping.update_step = update_step
    return optimizer
