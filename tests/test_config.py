"""RunConfig: JSON round trip, unknown keys rejected by name, every invalid field reported with its range."""

from __future__ import annotations

import json

import pytest

from engine import validation
from engine.config import LIMITS, RunConfig
from engine.errors import ConfigError, Problem


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validation.validate(RunConfig.from_dict(raw))
    return caught.value.messages


def test_defaults_are_valid_and_round_trip_through_json(lab_home):
    config = validation.validate(RunConfig())
    assert config.data.dataset == "digits3d" and config.model.architecture == "tutorial3d"
    again = RunConfig.from_json(config.to_json())
    assert again == config
    partial = RunConfig.from_dict({"training": {"epochs": 3}, "data": {"options": {"copies": 2}}})
    assert partial.training.epochs == 3 and partial.training.batch_size == 32
    assert json.loads(partial.to_json())["data"]["options"] == {"copies": 2}


def test_unknown_keys_are_named(lab_home):
    problems = _problems({"trainer": {}, "training": {"epoch": 3, "lr": 0.1}})
    assert problems[0].startswith("Unknown configuration key(s) trainer;")
    assert "Unknown field(s) training.epoch, training.lr;" in problems[1]
    assert "learning_rate" in problems[1]  # the valid names are listed


@pytest.mark.parametrize(
    ("section", "field", "value", "expected"),
    [
        ("training", "learning_rate", 0.0, "training.learning_rate is 0.0; it must be a number in (0, 1]."),
        ("training", "learning_rate", 2, "training.learning_rate is 2; it must be a number in (0, 1]."),
        ("model", "dropout_rate", 1.0, "model.dropout_rate is 1.0; it must be a number in [0, 1)."),
        ("training", "epochs", 0, "training.epochs is 0; it must be a whole number in [1, 10000]."),
        ("training", "batch_size", 2.5, "training.batch_size is 2.5; it must be a whole number in [1, 4096]."),
        ("training", "optimizer", "rmsprop", "training.optimizer is 'rmsprop'; choose one of adam, sgd, adamw."),
        ("data", "val_fraction", 0.0, "data.val_fraction is 0.0; it must be a number in (0, 1)."),
        ("model", "padding", "full", "model.padding is 'full'; choose one of valid, same."),
    ],
)
def test_each_invalid_field_names_itself_and_its_range(lab_home, section, field, value, expected):
    assert _problems({section: {field: value}}) == [expected]


def test_all_problems_come_together(lab_home):
    problems = _problems(
        {"training": {"learning_rate": -1, "epochs": 0}, "model": {"dropout_rate": 1.5}, "data": {"dataset": "x"}}
    )
    assert len(problems) == 4
    assert any(p.startswith("data.dataset is 'x'; valid datasets are digits3d, phantom_lesions, shapes3d") for p in problems)


def test_fractions_must_leave_a_training_set(lab_home):
    problems = _problems({"data": {"val_fraction": 0.5, "test_fraction": 0.45}})
    assert problems == [
        "data.val_fraction + data.test_fraction is 0.95; together they must leave at least 10% of the samples "
        "for training (at most 0.9)."
    ]


def test_unknown_architecture_lists_the_valid_ones(lab_home):
    assert _problems({"model": {"architecture": "unet"}}) == [
        "model.architecture is 'unet'; valid architectures are kerasio3d, tutorial3d, vgg3d, compact3d, resnet3d."
    ]


def test_a_preset_too_deep_for_the_volume_says_how_to_fix_it(lab_home):
    problems = _problems({"data": {"dataset": "phantom_lesions"}, "model": {"architecture": "kerasio3d"}})
    assert len(problems) == 1 and "at least 46 voxels" in problems[0] and "model.padding to 'same'" in problems[0]
    config = RunConfig.from_dict(
        {"data": {"dataset": "phantom_lesions"}, "model": {"architecture": "kerasio3d", "padding": "same"}}
    )
    assert validation.validate(config) is config


def test_problems_name_their_field(lab_home):
    """The Train form places each problem by its field, never by parsing the sentence."""
    problems = validation.problems(RunConfig.from_dict({
        "name": "x" * 201, "training": {"epochs": 0, "seed": -1}, "model": {"width_multiplier": 9},
        "data": {"dataset": "shapes3d", "options": {"size": 2}},
    }))
    assert {problem.field for problem in problems} == {
        "name", "training.epochs", "training.seed", "model.width_multiplier", "data.options.size"
    }
    assert all(isinstance(problem, Problem) and problem.message.endswith(".") for problem in problems)
    # A problem of the preset against the data is placed with the model.
    too_small = validation.problems(RunConfig.from_dict({"data": {"dataset": "phantom_lesions"},
                                                         "model": {"architecture": "kerasio3d"}}))
    assert [problem.field for problem in too_small] == ["model.architecture"]


def test_one_limit_per_knob_for_config_and_registry(lab_home):
    """The width multiplier's limit is the same for the config check and the model registry."""
    from engine import models

    high = LIMITS["model.width_multiplier"].high
    assert validation.problems(RunConfig.from_dict({"model": {"width_multiplier": high}})) == []
    too_wide = RunConfig.from_dict({"model": {"width_multiplier": high + 1}})
    assert [p.field for p in validation.problems(too_wide)] == ["model.width_multiplier"]
    with pytest.raises(ConfigError, match="model.width_multiplier"):
        models.resolve_knobs("tutorial3d", too_wide.model)


def test_padding_is_refused_for_presets_that_ignore_it(lab_home):
    for arch in ("vgg3d", "resnet3d"):
        problems = validation.problems(RunConfig.from_dict({"model": {"architecture": arch, "padding": "valid"}}))
        assert [p.field for p in problems] == ["model.padding"] and "always uses 'same'" in problems[0].message
    assert validation.problems(RunConfig.from_dict({"model": {"architecture": "vgg3d", "padding": "same"}})) == []


def test_dataset_knobs_are_checked(lab_home):
    assert _problems({"data": {"dataset": "shapes3d", "options": {"size": 2}}}) == [
        "data.options.size is 2; it must be a whole number between 6 and 64."
    ]


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "escape \x1b[31mred", "bell\x07", "nul\x00",
                                  "bidi \u202eoverride", "zero\u200bwidth"])
def test_control_characters_in_the_name_are_refused(lab_home, name):
    problems = RunConfig(name=name).field_problems()
    assert [problem.field for problem in problems] == ["name"]
    assert "control character" in problems[0].message and repr(name) not in problems[0].message


def test_ordinary_names_are_accepted(lab_home):
    for name in ("", "lr 1e-3 · dropout 0.3", "Lésion — 3D", "[x](y) <b>", "日本語"):
        assert RunConfig(name=name).field_problems() == []
