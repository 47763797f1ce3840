"""The Train page previews a dataset by itself only when it is cached or small; a large generated
set shows what is known without generating (shape, classes, estimated size) and a button."""

from __future__ import annotations

import os
from pathlib import Path

from ui.text import unescape_markdown


def _cache_entries() -> list[str]:
    cache = Path(os.environ["CONV3D_LAB_DATA"]) / "cache"
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def _metrics(at) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def test_a_large_generated_set_is_not_generated_on_render(app, fake_probe):
    at = app("app_pages/train.py")
    at.selectbox(key="train_dataset").select("phantom_lesions").run()
    entries_before = _cache_entries()  # the small default sets (digits3d, phantom_lesions 32^3 x 400) may be cached
    at.number_input(key="train_option_phantom_lesions_size").set_value(128)
    at.number_input(key="train_option_phantom_lesions_num_samples").set_value(40).run()
    assert not at.exception, [e.value for e in at.exception]
    assert _cache_entries() == entries_before, "phantom_lesions was generated on render"
    metrics = _metrics(at)
    assert (metrics["Samples"], metrics["Volume"], metrics["Classes"]) == ("40", "128³", "2")
    captions = " ".join(unescape_markdown(caption.value) for caption in at.caption)
    assert "320.0 MiB" in captions  # 40 x 128^3 voxels x 4 bytes
    assert at.button(key="train_generate_preview").label == "Generate preview"
    # The model summary still works from the known shape.
    assert fake_probe[-1][1:3] == ((128, 128, 128, 1), 2)


def test_generate_preview_button_loads_it_and_it_stays(app, monkeypatch):
    from ui import cached

    monkeypatch.setattr(cached, "PREVIEW_AUTO_BYTES", 1)  # every uncached set counts as large
    at = app("app_pages/train.py")
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.number_input(key="train_option_shapes3d_num_samples").set_value(16)
    at.number_input(key="train_option_shapes3d_size").set_value(8).run()
    assert not [name for name in _cache_entries() if name.startswith("shapes3d")]
    assert not at.get("plotly_chart")
    at.button(key="train_generate_preview").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [name for name in _cache_entries() if name.startswith("shapes3d")]
    assert len(at.get("plotly_chart")) == 2  # class balance and slices
    at.number_input(key="train_epochs").set_value(3).run()  # another change: now cached, still shown
    assert len(at.get("plotly_chart")) == 2


def test_the_slices_caption_says_when_only_the_first_classes_are_shown(app):
    from ui import cached

    at = app("app_pages/train.py")
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.number_input(key="train_option_shapes3d_num_samples").set_value(16)
    at.number_input(key="train_option_shapes3d_size").set_value(8).run()
    captions = [unescape_markdown(caption.value) for caption in at.caption]
    classes = int(_metrics(at)["Classes"])
    shown = min(classes, cached.PREVIEW_SAMPLES)
    expected = ("Middle axial slice of one sample per class."
                if shown == classes else
                f"Middle axial slice of one sample per class (the first {shown} of {classes} classes).")
    assert expected in captions, captions
    at.selectbox(key="train_dataset").select("digits3d").run()  # 10 classes, 4 slices
    captions = [unescape_markdown(caption.value) for caption in at.caption]
    assert "Middle axial slice of one sample per class (the first 4 of 10 classes)." in captions, captions
