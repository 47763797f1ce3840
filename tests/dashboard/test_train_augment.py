"""The Train page's augmentation knobs go into the config, and the augmentation preview shows the helper
process's before / after slices on a click (the helper itself is tested in tests/training/test_augment.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture
def fake_augment_probe(monkeypatch):
    from engine import probe

    calls = []

    def augmentation_preview(config, count=probe.AUGMENT_PREVIEW_VOLUMES):
        calls.append(config)
        before = [np.arange(64, dtype=np.float32).reshape(8, 8) for _ in range(3)]
        return {"before": before, "after": [b[::-1] for b in before], "labels": ["left", "right", "<b>x</b>"],
                "slice": 4, "volumes": []}

    monkeypatch.setattr(probe, "augmentation_preview", augmentation_preview)
    return calls


def _small_shapes(at):
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.number_input(key="train_option_shapes3d_num_samples").set_value(16)
    at.number_input(key="train_option_shapes3d_size").set_value(12).run()


def test_the_knobs_of_the_chosen_augmentations_are_shown_and_reach_the_preview(app, fake_augment_probe):
    at = app("app_pages/train.py")
    _small_shapes(at)
    assert len(at.get("plotly_chart")) == 2  # class balance and slices; no augmentation preview while off
    at.toggle(key="train_augment").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    keys = {widget.key for widget in at.number_input}
    assert {"train_rotate_degrees", "train_rotate_probability", "train_blur_sigma", "train_noise_std"} <= keys
    at.multiselect(key="train_augmentations").set_value(["flip", "rotate"]).run()
    keys = {widget.key for widget in at.number_input}
    assert "train_rotate_degrees" in keys and "train_blur_sigma" not in keys
    at.number_input(key="train_rotate_degrees").set_value(25.0).run()
    assert not fake_augment_probe  # nothing computed before the click
    at.button(key="train_augment_preview").click().run()
    assert not at.exception, [e.value for e in at.exception]
    sent = fake_augment_probe[-1]
    assert sent["training"]["rotate_degrees"] == 25.0 and sent["training"]["augmentations"] == ["flip", "rotate"]
    assert sent["data"]["dataset"] == "shapes3d"
    charts = at.get("plotly_chart")
    assert len(charts) == 3
    spec = json.loads(charts[2].proto.spec)  # the before / after grid: 2 rows x 3 volumes
    assert len(spec["data"]) == 6
    assert [annotation["text"] for annotation in spec["layout"]["annotations"]] == ["before", "after"]
    titles = [axis["title"]["text"] for name, axis in spec["layout"].items()
              if name.startswith("yaxis") and axis.get("title", {}).get("text")]
    assert titles == ["left", "right", "&lt;b&gt;x&lt;/b&gt;"]  # one row per volume; a class name is text, not HTML
    # Changing the epochs does not ask the helper again (the preview's key holds only what it depends on).
    count = len(fake_augment_probe)
    at.number_input(key="train_epochs").set_value(3).run()
    assert len(fake_augment_probe) == count


def test_an_out_of_range_strength_is_refused_with_a_sentence(app, fake_augment_probe):
    at = app("app_pages/train.py")
    _small_shapes(at)
    at.toggle(key="train_augment").set_value(True).run()
    from ui import train_form

    assert train_form.LIMITS["training.rotate_degrees"].high == 180  # the widget's bound is the config's limit
    from engine.config import RunConfig

    config = RunConfig.from_dict({"training": {"augment": True, "rotate_degrees": 500}})
    messages = [problem.message for problem in config.field_problems()]
    assert messages == ["training.rotate_degrees is 500; it must be a number in [0, 180]."]


def test_the_preview_reports_the_helper_s_sentence(app, monkeypatch):
    from engine import probe
    from engine.errors import DataError

    def broken(config, count=4):
        raise DataError("The dataset could not be read; import it again.")

    monkeypatch.setattr(probe, "augmentation_preview", broken)
    at = app("app_pages/train.py")
    _small_shapes(at)
    at.toggle(key="train_augment").set_value(True).run()
    at.button(key="train_augment_preview").click().run()
    assert not at.exception
    assert any("could not be read" in error.value for error in at.error)
