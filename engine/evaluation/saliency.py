"""3D Grad-CAM saliency maps, computed once after training and stored with the run.

``compute_and_store`` runs in the worker (it imports TensorFlow and Keras
inside the function); ``load_saliency`` and ``map_for_sample`` are plain NumPy
so the dashboard can read ``runs/<id>/saliency.npz`` without ever importing
TensorFlow.

Grad-CAM (Selvaraju et al., 2017) weighs each channel of the last convolutional
feature map by the mean gradient of the class score over its voxels, sums the
channels and keeps the positive part. The default here is its element-wise
form, HiResCAM (Draelos & Carin, 2020): gradient times activation voxel by
voxel, then the channel sum. Behind a global-average-pooling head (kerasio3d,
resnet3d) the gradient is the same at every voxel, so both give the same map;
behind a Flatten + Dense head (tutorial3d, compact3d, vgg3d) averaging the
gradient throws away *where* the evidence is, and classic Grad-CAM then often
peaks in the wrong place (on shapes3d "location" it picked the object's half
for 1/3 of the samples, HiResCAM for all of them; see
tests/evaluation/test_saliency.py). The class score is the pre-activation
logit of the predicted class: for the single sigmoid unit of a two-class head
that is z for class 1 and -z for class 0 (the logit of 1 - sigmoid(z)), so
evidence *for* the predicted class is highlighted either way. Logits rather
than probabilities keep the gradients alive when the model is confident.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from engine.datasets.preprocess import resample

log = logging.getLogger(__name__)

SALIENCY_FILE = "saliency.npz"
# Maps are stored at most this many voxels along each edge, as float16 in [0, 1].
MAX_STORED_EDGE = 16
# The name every preset gives its output layer (engine.models.common.predictions).
OUTPUT_LAYER = "predictions"
# Volumes per Grad-CAM batch (bounded memory for large volumes).
BATCH_SIZE = 16
# "hirescam" (element-wise, the default) or "gradcam" (channel weights = mean gradient).
METHODS = ("hirescam", "gradcam")


def saliency_path(run_dir: Path) -> Path:
    return Path(run_dir) / SALIENCY_FILE


def storage_shape(volume_shape: tuple[int, ...], max_edge: int = MAX_STORED_EDGE) -> tuple[int, int, int]:
    """The stored map shape: the volume's (D, H, W) shrunk so no edge exceeds ``max_edge``."""
    depth, height, width = (int(edge) for edge in volume_shape[:3])
    scale = min(1.0, max_edge / max(depth, height, width))
    return tuple(max(1, int(round(edge * scale))) for edge in (depth, height, width))


def _normalize(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its maximum (an all-zero map stays zero)."""
    if not len(maps):
        return maps
    peaks = maps.reshape(len(maps), -1).max(axis=1)
    peaks = np.where(peaks > 0, peaks, 1.0).reshape(-1, 1, 1, 1)
    return maps / peaks


def _pick_samples(count: int, max_samples: int) -> np.ndarray:
    """Up to ``max_samples`` positions spread evenly over ``count`` samples."""
    if count <= max_samples:
        return np.arange(count)
    if max_samples <= 0:
        return np.arange(0)
    return np.unique(np.linspace(0, count - 1, max_samples).round().astype(np.int64))


def _score_model(model, last_conv_layer: str):
    """A sub-model returning (last conv feature map, score input) and how to turn the latter into logits."""
    import keras

    conv_output = model.get_layer(last_conv_layer).output
    try:
        head = model.get_layer(OUTPUT_LAYER)
    except ValueError:
        head = None
    activation = getattr(head, "activation", None)
    if head is not None and activation in (keras.activations.sigmoid, keras.activations.softmax):
        # Return the head's input and apply its kernel ourselves: the logits.
        return keras.Model(model.inputs, [conv_output, head.input]), head
    return keras.Model(model.inputs, [conv_output, model.outputs[0]]), None


def _logits(head, head_input):
    """Pre-activation class scores: the head's kernel applied to its input, or logits of the probabilities."""
    import tensorflow as tf

    if head is not None:
        logits = tf.matmul(head_input, tf.cast(head.kernel, head_input.dtype))
        return logits + tf.cast(head.bias, logits.dtype) if head.bias is not None else logits
    # No known output layer: invert the activation (sigmoid or softmax, up to a constant).
    probabilities = tf.clip_by_value(head_input, 1e-7, 1.0 - 1e-7)
    if probabilities.shape[-1] == 1:
        return tf.math.log(probabilities) - tf.math.log(1.0 - probabilities)
    return tf.math.log(probabilities)


def grad_cam(
    model, volumes: np.ndarray, target_classes: np.ndarray, last_conv_layer: str, method: str = "hirescam"
) -> np.ndarray:
    """Class activation maps (N, d, h, w) at the resolution of ``last_conv_layer`` for each volume's target class."""
    import tensorflow as tf

    if method not in METHODS:
        raise ValueError(f"Unknown saliency method {method!r}; choose one of {', '.join(METHODS)}.")
    score_model, head = _score_model(model, last_conv_layer)
    maps = []
    for start in range(0, len(volumes), BATCH_SIZE):
        batch = tf.convert_to_tensor(np.asarray(volumes[start : start + BATCH_SIZE], dtype=np.float32))
        targets = tf.constant(np.asarray(target_classes[start : start + BATCH_SIZE], dtype=np.int64))
        with tf.GradientTape() as tape:
            features, head_input = score_model(batch, training=False)
            logits = _logits(head, head_input)
            if logits.shape[-1] == 1:
                # One sigmoid unit: the logit of class 1 is z, that of class 0 is -z.
                scores = tf.where(targets == 1, logits[:, 0], -logits[:, 0])
            else:
                scores = tf.gather(logits, targets, axis=1, batch_dims=1)
        gradients = tape.gradient(scores, features)
        if method == "gradcam":
            gradients = tf.reduce_mean(gradients, axis=(1, 2, 3), keepdims=True)
        cams = tf.nn.relu(tf.reduce_sum(gradients * features, axis=-1))
        maps.append(cams.numpy().astype(np.float32))
    return np.concatenate(maps, axis=0) if maps else np.zeros((0, 1, 1, 1), np.float32)


def compute_and_store(
    run_dir: Path,
    model,
    x_test: np.ndarray,
    sample_ids: np.ndarray,
    predicted: np.ndarray,
    last_conv_layer: str,
    max_samples: int,
    method: str = "hirescam",
) -> Path:
    """Grad-CAM maps of (up to ``max_samples``) test volumes for their predicted class, saved to saliency.npz.

    ``x_test`` (N, D, H, W, C) are the volumes as the model sees them (an
    array, or anything with ``len``, ``shape`` and indexing by an integer array),
    ``sample_ids`` their dataset row indices, ``predicted`` the predicted class
    indices (N,) or the (N, C) class probabilities. Maps are resampled to at
    most ``MAX_STORED_EDGE`` voxels per edge, scaled to [0, 1] per sample and
    stored as float16 (200 maps at 16^3 take under 2 MB). Returns the file path.
    """
    predicted = np.asarray(predicted)
    if predicted.ndim == 2:
        predicted = np.argmax(predicted, axis=1)
    predicted = predicted.astype(np.int64)
    chosen = _pick_samples(len(x_test), int(max_samples))
    volume_shape = tuple(int(edge) for edge in x_test.shape[1:4])
    target_shape = storage_shape(volume_shape)
    # x_test may be read from disk on demand (engine.training.pipeline.VolumeRows):
    # take the chosen volumes a Grad-CAM batch at a time, never the whole split.
    raw_batches = [
        grad_cam(model, x_test[positions], predicted[positions], last_conv_layer, method)
        for positions in (chosen[start : start + BATCH_SIZE] for start in range(0, len(chosen), BATCH_SIZE))
    ]
    raw = np.concatenate(raw_batches) if raw_batches else np.zeros((0, 1, 1, 1), np.float32)
    feature_shape = raw.shape[1:] if len(raw) else (0, 0, 0)
    maps = np.stack([resample(cam, target_shape) for cam in raw]) if len(raw) else np.zeros((0, *target_shape))
    maps = _normalize(np.clip(maps, 0.0, None)).astype(np.float16)

    path = saliency_path(run_dir)
    temporary = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(
        temporary,
        maps=maps,
        sample_ids=np.asarray(sample_ids, dtype=np.int64)[chosen],
        target_classes=predicted[chosen],
        volume_shape=np.asarray(volume_shape, dtype=np.int64),
        feature_shape=np.asarray(feature_shape, dtype=np.int64),
        layer=np.asarray(last_conv_layer),
        method=np.asarray(method),
    )
    temporary.replace(path)  # readers never see a half-written file
    log.info("saliency: %d maps %s from %s -> %s", len(maps), target_shape, last_conv_layer, path)
    return path


def load_saliency(run_dir: Path) -> dict[str, Any] | None:
    """The stored maps of a run, or None when it has none (or the file cannot be read).

    Keys: maps (N, d, h, w) float32 in [0, 1], sample_ids (N,), target_classes
    (N,), volume_shape (D, H, W), feature_shape, layer, method.
    """
    path = saliency_path(run_dir)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            data = {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError) as e:
        log.warning("cannot read %s: %s", path, e)
        return None
    data["maps"] = data["maps"].astype(np.float32)
    data["volume_shape"] = tuple(int(edge) for edge in data["volume_shape"])
    data["feature_shape"] = tuple(int(edge) for edge in data["feature_shape"])
    data["layer"], data["method"] = str(data["layer"]), str(data["method"])
    return data


def map_for_sample(saliency: dict[str, Any] | None, sample_id: int, shape: tuple[int, ...] | None = None):
    """One sample's map (resampled to ``shape``, e.g. its volume's (D, H, W)), or None when it has none."""
    if saliency is None:
        return None
    positions = np.flatnonzero(saliency["sample_ids"] == int(sample_id))
    if not len(positions):
        return None
    cam = saliency["maps"][positions[0]]
    return resample(cam, tuple(shape)) if shape is not None else cam
