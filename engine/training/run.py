"""Execute one recorded run: data, model, ``fit``, test evaluation, final status.

The same function serves the foreground CLI (``python -m engine train``) and
the background worker (``python -m engine worker RUN_ID``). It never raises
for a failed run: the failure is recorded (message and traceback) and the
final status returned, so the caller and the store stay consistent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import datasets, errors, models, paths, positive_class
from engine.weights import checkpoints
from engine.machine import execution
from engine.config import RunConfig, TrainingConfig
from engine.errors import DataError, LabError, RunFailed
from engine.runs import RunRecord, RunStatus
from engine.store import RunStore

if TYPE_CHECKING:
    from engine.training.callbacks import Pruner
    from engine.training.pipeline import VolumeRows

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """The three splits: volumes read from disk on demand, labels and sample ids in memory."""

    x_train: VolumeRows
    y_train: np.ndarray
    x_val: VolumeRows
    y_val: np.ndarray
    x_test: VolumeRows
    y_test: np.ndarray
    val_ids: np.ndarray
    test_ids: np.ndarray
    num_classes: int
    class_names: list[str]
    volume_shape: tuple[int, ...]


def prepare_data(config: RunConfig, run_dir: Path, store: RunStore, run_id: int) -> PreparedData:
    """Load (or generate) the dataset, split it once and save the split indices with the run.

    No volume is read here: each split is a view of the dataset's memory map
    that the tf.data pipeline reads a batch at a time (and normalises then).
    """
    from engine.training.pipeline import VolumeRows

    dataset = datasets.load_dataset(config.data.dataset, config.data.options)
    splits_path = run_dir / "splits.json"
    if splits_path.exists():  # a resumed run keeps its split
        splits = datasets.Splits.from_dict(json.loads(splits_path.read_text()))
    else:
        if config.data.folds:
            splits = datasets.make_fold_splits(
                dataset, config.data.folds, config.data.fold or 0, config.data.test_fraction, seed=config.training.seed,
                use_predefined=config.data.predefined_split,
            )
        else:
            splits = datasets.make_splits(
                dataset, config.data.val_fraction, config.data.test_fraction, seed=config.training.seed,
                use_predefined=config.data.predefined_split,
            )
        splits_path.write_text(json.dumps(splits.to_dict()))
    store.update_run(
        run_id,
        dataset_fingerprint=dataset.fingerprint,
        num_classes=dataset.num_classes,
        class_names=list(dataset.class_names),
        split_sizes={"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        **_recorded_positive_class(config, dataset),
    )

    def take(indices: np.ndarray) -> tuple[VolumeRows, np.ndarray]:
        return VolumeRows(dataset.x, indices, config.data.normalization), np.asarray(dataset.y[indices])

    x_train, y_train = take(splits.train)
    x_val, y_val = take(splits.val)
    x_test, y_test = take(splits.test)
    return PreparedData(
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        val_ids=np.asarray(dataset.sample_ids[splits.val]),
        test_ids=np.asarray(dataset.sample_ids[splits.test]),
        num_classes=dataset.num_classes,
        class_names=list(dataset.class_names),
        volume_shape=tuple(dataset.volume_shape),
    )


def _recorded_positive_class(config: RunConfig, dataset: datasets.Dataset) -> dict[str, Any]:
    """{"config": the config with data.positive_class filled in} when the run took the dataset's, else {}.

    Recorded with the class names, so every number computed for the run later names the class it is for.
    """
    sentence = positive_class.problem(dataset.class_names, config.data.positive_class)
    if sentence:
        raise DataError(sentence)
    if dataset.num_classes != 2 or config.data.positive_class is not None:
        return {}
    recorded = config.copy()
    recorded.data.positive_class = dataset.positive_class or positive_class.guess(dataset.class_names)
    return {"config": recorded}


def _set_determinism(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if not tf.config.list_physical_devices("GPU"):
        # Same config + seed -> identical numbers on CPU. (On GPU some kernels
        # have no deterministic version, so it is left to the user there.)
        tf.config.experimental.enable_op_determinism()


# The statuses a trainer may end: its own running run, or one reconcile wrongly took for dead
# (and nobody resumed: the transitions also require this process's pid).
_ACTIVE = (RunStatus.RUNNING, RunStatus.INTERRUPTED)


class ClaimLost(Exception):
    """This process no longer holds its run: another process resumed it."""


def execute_run(store: RunStore, run_id: int, *, verbose: int = 0, callbacks: Sequence[Any] = (),
                pruner: Pruner | None = None) -> dict[str, Any]:
    """Train run ``run_id`` (status ``running``) to its end and record the outcome; returns the summary.

    The caller owns the process and its heartbeat (the worker, or ``python -m
    engine train``). ``callbacks`` are extra Keras callbacks. ``pruner`` is asked after
    each epoch whether to go on (a sweep trial's; the worker builds it): training imports no sweep.
    """
    run = store.get_run(run_id)
    run_dir = paths.run_dir(run_id)
    pid = os.getpid()
    if run.pid is None:
        # Called directly on a running run (tests, tools): this process holds it from here on.
        store.update_run(run_id, pid=pid)
    store.log_event(run_id, f"worker started (pid {pid}, slot {run.slot})")
    try:
        status, error = _train(store, run, run_dir, verbose, callbacks, pruner)
        store.transition(
            run_id, status, from_statuses=_ACTIVE, owner_pid=pid, finished_at=time.time(), error=error
        )
        store.log_event(run_id, f"run {status.label}" + (f": {error}" if error else ""), "error" if error else "info")
    except ClaimLost as lost:
        # Another process holds the run now (this one was suspended and judged gone): its history is
        # not ours to finish. One event says what happened; nothing else is written.
        store.log_event(
            run_id, f"the trainer with pid {pid} stopped without recording more: it no longer holds the run ({lost})",
            "warning",
        )
    except BaseException as exc:  # record every failure, including KeyboardInterrupt / SIGTERM
        message = _failure_message(exc)
        status = RunStatus.STOPPED if isinstance(exc, (KeyboardInterrupt, SystemExit)) else RunStatus.FAILED
        detail = traceback.format_exc()
        os_error = _os_error(exc)
        if os_error is not None:
            # An unexpected file-system error names the server's paths: a sentence for the store (and
            # so for the pages), the detail for the operator's log (stderr: the run's worker.log) only.
            message = errors.os_error_sentence(os_error, run_id, run_dir.is_dir())
            print(f"run {run_id}: {message}\n{detail}", file=sys.stderr, flush=True)
            detail = None
        store.transition(
            run_id,
            status,
            from_statuses=_ACTIVE,
            owner_pid=pid,
            finished_at=time.time(),
            error=message,
            traceback=detail,
        )
        store.log_event(run_id, f"run {status.label}: {message}", "error")
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
    return summarize(store.get_run(run_id))


def _os_error(exc: BaseException) -> OSError | None:
    """The file-system error behind ``exc`` (itself, or what it was explicitly raised from), or None; a
    ``LabError`` (a sentence already) is none."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, LabError):
            return None
        if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError, TimeoutError)):
            return exc
        exc, seen = exc.__cause__, seen + 1
    return None


def _failure_message(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # TensorFlow graph errors open with "in user code:" and a stack; the cause is the last line.
    text = (lines[-1] if lines[0].startswith("in user code") else lines[0]) if lines else type(exc).__name__
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return "The run was interrupted before it finished."
    if isinstance(exc, MemoryError) or "ResourceExhausted" in type(exc).__name__ or "OOM" in text:
        return f"Out of memory ({text[:200]}); lower the batch size, the volume size or the width multiplier."
    if isinstance(exc, (LabError, RunFailed)):
        return str(exc)
    return f"{type(exc).__name__}: {text[:500]}"


def _train(store: RunStore, run: RunRecord, run_dir: Path, verbose: int, extra_callbacks: Sequence[Any],
           pruner: Pruner | None = None):
    """fit() and the test evaluation; returns (final status, error text or None).

    The dtype policy and the strategy hold for the whole of it (``scope``) and are undone afterwards.
    """
    with contextlib.ExitStack() as scope:
        return _train_in(scope, store, run, run_dir, verbose, extra_callbacks, pruner)


def _resolve_execution(store: RunStore, run_id: int, run_dir: Path, config: RunConfig, data: PreparedData):
    """Precision, XLA, strategy and the input cache for this machine, recorded with the run; returns both."""
    from engine.training import pipeline, precision

    def model_flops() -> float:
        # A float32 build only to count; the seed is set again so the real model's weights are as before.
        model = models.build_model(config.model.architecture, data.volume_shape, data.num_classes, config.model)
        flops = precision.forward_flops_per_sample(model)
        _set_determinism(config.training.seed)
        return flops

    chosen = precision.resolve(config.training, model_flops)
    cache, cache_reason = pipeline.plan_cache([data.x_train, data.x_val])
    if cache:
        data = dataclasses.replace(
            data, x_train=pipeline.in_memory(data.x_train), x_val=pipeline.in_memory(data.x_val)
        )
    chosen = dataclasses.replace(chosen, input_cache=cache, input_reason=cache_reason)
    execution.save(run_dir, chosen)
    store.log_event(run_id, f"execution: {chosen.summary()} ({'; '.join(chosen.reasons())})")
    return chosen, data


def _train_in(scope: contextlib.ExitStack, store: RunStore, run: RunRecord, run_dir: Path, verbose: int,
              extra_callbacks: Sequence[Any], pruner: Pruner | None = None):
    """The steps of a run, in order: data, execution, model, progress, inputs and callbacks, fit, outcome."""
    from engine.training import precision, recipe

    run_id, config = run.id, run.config
    training = config.training
    data = _ready_data(store, run, run_dir)
    chosen, data = _resolve_execution(store, run_id, run_dir, config, data)
    # From here the model is built (or loaded) under the chosen dtype policy and strategy.
    strategy = scope.enter_context(precision.applied(chosen))
    scope.enter_context(strategy.scope())
    batch_size = chosen.batch_size or training.batch_size  # the global batch under a strategy

    steps_per_epoch = max(1, int(np.ceil(len(data.y_train) / batch_size)))
    rate_plan = recipe.learning_rate_plan(training, steps_per_epoch)
    model, initial_epoch = _model_to_fit(store, run, run_dir, data, chosen, rate_plan.rate)
    mode = recipe.monitor_mode(training.monitor)
    best_value, best_epoch = _restart_progress(store, run_id, training.monitor, mode, initial_epoch)

    train_ds, val_ds = _fit_inputs(data, batch_size, training)
    recorder = _recorder(store, run_id, run_dir, data, val_ds, training, mode, best_value, best_epoch, pruner)
    callbacks = _callbacks(recorder, rate_plan.callbacks, extra_callbacks, training, mode)
    _record_model(store, run_id, model, config, steps_per_epoch)

    model.fit(
        train_ds,  # no validation_data: the recorder's one predict pass gives val_loss and the val metrics
        epochs=training.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        class_weight=recipe.class_weights(training, data.y_train, data.num_classes),
        shuffle=False,  # the tf.data pipeline shuffles (seeded); Keras cannot shuffle a Dataset
        verbose=verbose,
    )

    ended_early = _ended_early(store, run_id, recorder, training)
    if ended_early is not None:
        return ended_early
    _batchnorm_check(store, run_id, model, data, training.batch_size, recorder.epochs_completed)
    _evaluate_test(store, run_id, model, best_path=run_dir / checkpoints.BEST, data=data, config=config,
                   recorder=recorder)
    return RunStatus.FINISHED, None


def _ready_data(store: RunStore, run: RunRecord, run_dir: Path) -> PreparedData:
    """The seed set, the splits read (or the pretext task made of them), and an event that says their sizes."""
    from engine.training import pretrain

    run_id, config = run.id, run.config
    _set_determinism(config.training.seed)
    data = prepare_data(config, run_dir, store, run_id)
    data = pretrain.pretext_data(store, run_id, config, data)  # a pretraining run: rotations, labels unused
    store.log_event(
        run_id,
        f"data ready: {len(data.y_train)} train / {len(data.y_val)} val / {len(data.y_test)} test, "
        f"volume {data.volume_shape}, {data.num_classes} classes",
    )
    return data


def _model_to_fit(store: RunStore, run: RunRecord, run_dir: Path, data: PreparedData, chosen, learning_rate):
    """(model, initial epoch): last.keras to resume from when it is sound, else a new model, compiled.

    ``learning_rate`` is the learning-rate plan's rate (a number or a Keras schedule).
    """
    import keras

    from engine.training import recipe, transfer

    run_id, config = run.id, run.config
    training = config.training
    resume_epoch = run.resume_from_epoch
    last_path = run_dir / checkpoints.LAST
    checkpoint_problem = checkpoints.problem(last_path) if resume_epoch else None
    if resume_epoch is not None:
        # Rows of a partial epoch (or anything after the checkpoint) are dropped;
        # the history then continues from the last completed epoch.
        store.discard_after_epoch(run_id, 0 if checkpoint_problem else int(resume_epoch))
    if resume_epoch and checkpoint_problem:
        # jobs.resume refuses this; the checkpoint went bad after the resume was queued.
        store.log_event(
            run_id, f"{last_path.name} {checkpoint_problem}: training starts again from epoch 0", "warning"
        )
    if resume_epoch and not checkpoint_problem:
        # Continue from the last completed epoch with the optimizer state saved with it.
        model = keras.models.load_model(last_path)
        transfer.scale_backbone(model.optimizer, model, training.backbone_lr_scale)  # not saved with the model
        initial_epoch = int(resume_epoch)
        store.log_event(run_id, f"resuming after epoch {initial_epoch}")
    else:
        model = models.build_model(config.model.architecture, data.volume_shape, data.num_classes, config.model)
        transfer.prepare_model(store, run, model, data.class_names)  # training.init_from, freeze_blocks
        model.compile(
            optimizer=transfer.make_optimizer(training, learning_rate, model),
            loss=recipe.make_loss(training, data.num_classes),
            metrics=recipe.make_metrics(data.num_classes),
            jit_compile=chosen.xla,
        )
        initial_epoch = 0
    return model, initial_epoch


def _restart_progress(store: RunStore, run_id: int, monitor: str, mode: str, initial_epoch: int):
    """(best value, best epoch) to go on from, also written on the run with the epochs done."""
    from engine.training.callbacks import recorded_best

    # A resume continues after last.keras's epoch: the best is that of the epochs kept (best.keras's).
    best_value, best_epoch = recorded_best(store, run_id, monitor, mode) if initial_epoch else (None, None)
    # (A fresh start, also a resume without a checkpoint: no progress from an earlier attempt remains.)
    store.update_run(run_id, resume_from_epoch=None, epochs_done=initial_epoch, best_value=best_value,
                     best_epoch=best_epoch)
    return best_value, best_epoch


def _fit_inputs(data: PreparedData, batch_size: int, training: TrainingConfig):
    """(training batches: shuffled by the seed, augmented; validation batches, in order)."""
    from engine.training import pipeline

    train_ds = pipeline.make_dataset(
        data.x_train,
        pipeline.encode_labels(data.y_train, data.num_classes),
        batch_size,
        training=True,
        seed=training.seed,
        training_config=training,
    )
    val_ds = pipeline.make_dataset(
        data.x_val, pipeline.encode_labels(data.y_val, data.num_classes), batch_size, training=False, seed=0
    )
    return train_ds, val_ds


def _recorder(store: RunStore, run_id: int, run_dir: Path, data: PreparedData, val_ds, training: TrainingConfig,
              mode: str, best_value, best_epoch, pruner: Pruner | None):
    from engine.training.callbacks import StoreRecorder

    return StoreRecorder(
        store,
        run_id,
        run_dir,
        validation=(val_ds, data.y_val, data.val_ids),
        num_classes=data.num_classes,
        num_train_samples=len(data.y_train),
        monitor=training.monitor,
        mode=mode,
        best_value=best_value,
        best_epoch=best_epoch,
        pruner=pruner,
    )


def _callbacks(recorder, rate_callbacks: Sequence[Any], extra_callbacks: Sequence[Any], training: TrainingConfig,
               mode: str) -> list:
    import keras

    callbacks: list[keras.callbacks.Callback] = [
        recorder,  # writes best.keras and last.keras atomically, and the store
        *rate_callbacks,
        *extra_callbacks,
    ]
    if training.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=training.monitor, mode=mode, patience=training.patience))
    return callbacks


def _record_model(store: RunStore, run_id: int, model, config: RunConfig, steps_per_epoch: int) -> None:
    """The model's size, as an event, on the run, and as the doctor's training-time checks."""
    from engine.doctor.findings import PARAMS_CHECK, STEPS_PER_EPOCH_CHECK
    from engine.training import checks

    store.log_event(run_id, f"model {config.model.architecture}: {model.count_params():,} parameters")
    store.update_run(run_id, num_params=int(model.count_params()))
    checks.record(store, run_id, 0, {PARAMS_CHECK: model.count_params(), STEPS_PER_EPOCH_CHECK: steps_per_epoch})


def _ended_early(store: RunStore, run_id: int, recorder,
                 training: TrainingConfig) -> tuple[RunStatus, str | None] | None:
    """(status, error) when fit() ended before its last epoch (lost claim raises, NaN, stop, pruning); else None."""
    if recorder.lost_claim is not None:
        raise ClaimLost(recorder.lost_claim)
    if recorder.nan_epoch is not None:
        return RunStatus.FAILED, (
            f"The loss became NaN in epoch {recorder.nan_epoch} (learning rate {training.learning_rate:g}); "
            "lower the learning rate (e.g. by 10x) or enable BatchNorm."
        )
    if recorder.stopped_by_user:
        return RunStatus.STOPPED, None
    if recorder.pruned_epoch is not None:
        store.log_event(run_id, f"pruned after epoch {recorder.pruned_epoch}: its validation curve is below "
                                "the median of the sweep's other trials")
        return RunStatus.PRUNED, None
    return None


def _batchnorm_check(store, run_id, model, data: PreparedData, batch_size: int, epoch: int | None) -> None:
    """The doctor's BatchNorm check on the final weights; a failure here never fails the run."""
    from engine.training import checks

    if not epoch or not len(data.y_val) or not checks.has_batchnorm(model):
        return
    try:
        values = checks.batchnorm_gap(model, data.x_val, data.y_val, data.num_classes, batch_size)
        checks.record(store, run_id, epoch, values)
    except Exception as e:  # noqa: BLE001 - a diagnostic; the trained run stands
        store.log_event(run_id, f"the BatchNorm check could not run: {type(e).__name__}: {e}", level="warning")


def _evaluate_test(store, run_id, model, best_path, data: PreparedData, config: RunConfig, recorder) -> None:
    """Evaluate the best weights on the test split; store metrics and per-sample predictions."""
    from engine.training import pipeline, recipe

    training = config.training
    if checkpoints.usable(best_path):
        model.load_weights(best_path)
    test_ds = pipeline.make_dataset(
        data.x_test, pipeline.encode_labels(data.y_test, data.num_classes), training.batch_size, training=False, seed=0
    )
    results = model.evaluate(test_ds, return_dict=True, verbose=0)
    outputs = model.predict(test_ds, verbose=0)
    probabilities = pipeline.probabilities_from_outputs(outputs, data.num_classes)
    epoch = recorder.best_epoch or recorder.epochs_completed or 0
    store.save_predictions(run_id, epoch, "test", data.test_ids, data.y_test, probabilities)
    test_metrics = {name: float(value) for name, value in results.items()}
    test_metrics.update(recipe.macro_precision_recall(data.y_test, probabilities))
    test_metrics["epoch"] = epoch
    store.log_metrics(
        run_id, [{"kind": "test", "epoch": epoch, "name": name, "value": value} for name, value in test_metrics.items()]
    )
    store.update_run(run_id, test_metrics=test_metrics)
    store.log_event(
        run_id, "test: " + ", ".join(f"{k} {v:.4f}" for k, v in test_metrics.items() if k != "epoch")
    )
    _store_saliency(store, run_id, model, data, probabilities, config)


def _store_saliency(store, run_id, model, data: PreparedData, probabilities, config: RunConfig) -> None:
    """Grad-CAM maps of the test samples with the best weights; a failure here never fails the run."""
    from engine.evaluation import saliency

    limit = config.training.max_saliency_samples
    if not limit:
        return
    started = time.perf_counter()
    try:
        path = saliency.compute_and_store(
            paths.run_dir(run_id), model, data.x_test, data.test_ids, probabilities,
            models.ARCHITECTURES[config.model.architecture].last_conv_layer, limit,
        )
    except Exception as e:  # noqa: BLE001 - saliency is an extra; the trained run stands
        store.log_event(run_id, f"saliency maps could not be computed: {type(e).__name__}: {e}", level="warning")
        return
    store.log_event(run_id, f"saliency maps stored in {path.name} ({time.perf_counter() - started:.1f} s)")


def summarize(run: RunRecord) -> dict[str, Any]:
    """The JSON summary printed by ``train --json`` and used by tools."""
    test = run.test_metrics
    return {
        "run_id": run.id,
        "name": run.name,
        "status": run.status.value,
        "epochs_done": run.epochs_done,
        "epochs_total": run.epochs_total,
        "best": {"monitor": run.monitor, "value": run.best_value, "epoch": run.best_epoch},
        "test": {"loss": test.get("loss"), "accuracy": test.get("accuracy"), "auc": test.get("auc")},
        "error": run.error,
    }
