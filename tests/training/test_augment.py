"""Each augmentation keeps the shape, keeps (or, for noise, bounds) the value range, is reproducible under a
fixed seed, changes the volume at probability 1 and leaves it alone at probability 0; the pipeline and the
preview draw the same volumes with the same seed."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from engine.config import AUGMENT_KNOBS, RunConfig, TrainingConfig
from engine.training import augment

KNOBBED = tuple(AUGMENT_KNOBS)
SEED = (11, 3)
# Each output voxel of these is a convex combination (rotate, scale, blur) or a monotone map (gamma) of the
# input, so the output stays inside the input's range (up to float rounding).
RANGE_KEEPING = ("rotate", "scale", "gamma", "blur")


def _volume(shape=(12, 14, 10, 1), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    volume = rng.normal(size=shape).astype(np.float32)
    volume[3:8, 4:9, 2:7] += 3.0  # a bright block, so a spatial change is not lost in the noise
    return volume


def _settings(name: str, probability: float = 1.0, **strength) -> augment.AugmentSettings:
    training = TrainingConfig(augment=True, augmentations=[name])
    probability_field, strength_field = AUGMENT_KNOBS[name]
    setattr(training, probability_field, probability)
    if strength:
        setattr(training, strength_field, strength["value"])
    return augment.AugmentSettings.from_training(training)


def _apply(volume: np.ndarray, settings: augment.AugmentSettings, seed=SEED) -> np.ndarray:
    return augment.augment_volume(tf.constant(volume), tf.constant(seed, tf.int64), settings).numpy()


@pytest.mark.parametrize("name", KNOBBED)
def test_each_augmentation_keeps_the_shape_and_is_reproducible_under_a_fixed_seed(name):
    volume = _volume()
    first = _apply(volume, _settings(name))
    assert first.shape == volume.shape and first.dtype == np.float32
    np.testing.assert_array_equal(first, _apply(volume, _settings(name)))
    assert np.all(np.isfinite(first))


@pytest.mark.parametrize("name", KNOBBED)
def test_each_augmentation_changes_the_volume_at_probability_one_and_not_at_zero(name):
    volume = _volume()
    assert np.abs(_apply(volume, _settings(name)) - volume).max() > 1e-3
    np.testing.assert_array_equal(_apply(volume, _settings(name, probability=0.0)), volume)
    np.testing.assert_array_equal(_apply(volume, _settings(name, value=0.0)), volume)  # no strength, no change


@pytest.mark.parametrize("name", KNOBBED)
def test_another_seed_draws_another_transform(name):
    volume = _volume()
    assert not np.array_equal(_apply(volume, _settings(name), (11, 3)), _apply(volume, _settings(name), (11, 4)))


@pytest.mark.parametrize("name", RANGE_KEEPING)
def test_spatial_gamma_and_blur_stay_within_the_volume_range(name):
    volume = _volume()
    for seed in range(5):
        out = _apply(volume, _settings(name), (seed, seed + 1))
        assert out.min() >= volume.min() - 1e-5 and out.max() <= volume.max() + 1e-5


def test_noise_is_relative_to_the_volume_spread_and_centred():
    volume = _volume(shape=(16, 16, 16, 1)) * 50.0 + 400.0  # CT-like numbers: the noise scales with them
    out = _apply(volume, _settings("noise", value=0.2))
    difference = out - volume
    spread = volume.std()
    assert 0.1 * spread * 0.9 <= difference.std() <= 0.2 * spread * 1.1  # std drawn in [strength/2, strength]
    assert abs(difference.mean()) < 0.05 * spread


def test_gamma_keeps_the_ends_of_the_range():
    volume = _volume()
    out = _apply(volume, _settings("gamma", value=1.0))
    assert out.min() == pytest.approx(volume.min()) and out.max() == pytest.approx(volume.max())


def test_the_affine_resampler_is_exact_for_the_identity_and_a_half_turn():
    volume = _volume(shape=(9, 9, 9, 2))
    np.testing.assert_array_equal(augment.resample_affine(tf.constant(volume), tf.eye(3)).numpy(), volume)
    half_turn = tf.constant(np.diag([1.0, -1.0, -1.0]), tf.float32)  # 180° about axis 0: H and W reversed
    turned = augment.resample_affine(tf.constant(volume), half_turn).numpy()
    np.testing.assert_allclose(turned, volume[:, ::-1, ::-1], atol=1e-5)


def test_blur_on_a_constant_volume_is_the_constant_and_it_spreads_a_point():
    constant = np.full((8, 8, 8, 1), 2.5, np.float32)
    np.testing.assert_allclose(augment.gaussian_blur(tf.constant(constant), tf.constant(1.0), 3).numpy(), 2.5,
                               rtol=1e-5)
    point = np.zeros((9, 9, 9, 1), np.float32)
    point[4, 4, 4] = 1.0
    blurred = augment.gaussian_blur(tf.constant(point), tf.constant(1.0), 3).numpy()
    assert blurred.sum() == pytest.approx(1.0, rel=1e-5) and blurred[4, 4, 4] < 0.1 and blurred[4, 4, 5] > 0


def test_all_augmentations_together_keep_the_shape_and_the_seed():
    volume = _volume(shape=(10, 12, 12, 1))
    settings = augment.AugmentSettings.from_training(TrainingConfig(augment=True))  # every augmentation
    assert set(settings.operations) == set(TrainingConfig().augmentations)
    first = _apply(volume, settings)
    assert first.shape == volume.shape
    np.testing.assert_array_equal(first, _apply(volume, settings))


def test_the_four_earlier_augmentations_draw_what_they_drew_before():
    """flip, rotate90, shift and intensity keep their seeds, so a run made before resumes the same."""
    volume = _volume(shape=(8, 8, 8, 1))
    seed = tf.constant(SEED, tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, num=6)
    expected = volume
    for axis in range(3):
        if tf.random.stateless_uniform([], seeds[axis]) < 0.5:
            expected = expected[::-1] if axis == 0 else (expected[:, ::-1] if axis == 1 else expected[:, :, ::-1])
    settings = augment.AugmentSettings.from_training(TrainingConfig(augment=True, augmentations=["flip"]))
    np.testing.assert_array_equal(_apply(volume, settings), expected)


def test_the_pipeline_is_reproducible_with_every_augmentation_and_the_seed_matters():
    from engine.training.pipeline import make_dataset

    volumes = np.stack([_volume(shape=(10, 10, 10, 1), seed=s) for s in range(6)])
    labels = np.array([0, 1, 0, 1, 0, 1])
    training = TrainingConfig(augment=True)

    def epoch(seed):
        dataset = make_dataset(volumes, labels, 3, training=True, seed=seed, training_config=training)
        return np.concatenate([np.asarray(batch) for batch, _ in dataset])

    first = epoch(5)
    np.testing.assert_array_equal(first, epoch(5))
    assert not np.array_equal(first, epoch(6))


def test_the_preview_is_the_first_batch_of_the_real_pipeline(lab_home):
    from engine.training import augment_preview
    from engine.training.pipeline import VolumeRows, make_dataset

    config = RunConfig.from_dict({
        "data": {"dataset": "shapes3d", "options": {"num_samples": 24, "size": 10}},
        "training": {"augment": True, "batch_size": 8, "seed": 3},
    })
    preview = augment_preview.first_batch(config, 4)
    assert preview["before"].shape == preview["after"].shape == (4, 10, 10, 10, 1)
    assert len(preview["labels"]) == 4 and not np.array_equal(preview["before"], preview["after"])
    dataset, rows = augment_preview.training_split(config)
    real = make_dataset(VolumeRows(dataset.x, rows, config.data.normalization), np.asarray(dataset.y[rows]), 8,
                        training=True, seed=3, training_config=config.training)
    first_real_batch = np.asarray(next(iter(real))[0])
    np.testing.assert_array_equal(preview["after"], first_real_batch[:4])


def test_rotate90_turns_the_axial_plane_like_the_test_time_views_and_keeps_the_shape():
    from engine.inference.views import View

    volume = _volume(shape=(6, 10, 10, 1))  # D != H == W: turning any other plane would change the shape
    settings = augment.AugmentSettings.from_training(TrainingConfig(augment=True, augmentations=["rotate90"]))
    seen = set()
    for seed in range(12):
        out = _apply(volume, settings, (seed, 0))
        assert out.shape == volume.shape
        turns = [k for k in range(4) if np.array_equal(out, View((), k).apply(volume))]
        assert turns, "rotate90 gave a volume that is none of the four axial turns"
        seen.update(turns)
    assert seen == {0, 1, 2, 3}


def test_the_cli_sets_the_knobs_and_the_preview_command_writes_the_slices(lab_home, tmp_path, capsys):
    import json

    from engine import cli

    out = tmp_path / "preview.npz"
    code = cli.main(["augment-preview", "--dataset", "shapes3d", "--option", "num_samples=24", "--option", "size=10",
                     "--augment", "--augmentations", "rotate,noise", "--augment-knob", "rotate_degrees=30",
                     "--augment-knob", "noise_probability=1", "--batch-size", "4", "--out", str(out), "--json"])
    assert code == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(answer["volumes"]) == 4 and answer["slice"] == 5
    with np.load(out) as slices:
        assert slices["before"].shape == slices["after"].shape == (4, 10, 10)
        assert not np.array_equal(slices["before"], slices["after"])
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--augment", "--augmentations", "flip,blur", "--augment-knob", "blur_sigma=2"])
    config = cli.config_from_args(args)
    assert config.training.augmentations == ["flip", "blur"] and config.training.blur_sigma == 2.0


@pytest.mark.parametrize("arguments, sentence", [
    (["--augment-knob", "spin=3"], "name one of rotate_probability"),
    (["--augment-knob", "rotate_degrees=lots"], "the value must be a number"),
    (["--augment-knob", "rotate_degrees=400"], "training.rotate_degrees is 400.0; it must be a number in [0, 180]"),
    (["--augmentations", "flip,twirl"], "use a list drawn from flip"),
])
def test_the_cli_refuses_a_wrong_augmentation_with_a_sentence(arguments, sentence, capsys):
    from engine import cli

    assert cli.main(["augment-preview", "--augment", *arguments]) == 2
    assert sentence in capsys.readouterr().err
