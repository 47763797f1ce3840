"""Train's "Plan for me": the engine's plan (a real `python -m engine plan` subprocess) fills the form, each
choice's reason is shown under its section, and every field stays editable."""

from __future__ import annotations

from ui.text import unescape_markdown


def _reasons(at) -> str:
    return " ".join(unescape_markdown(block.value) for block in at.markdown)


def test_plan_for_me_fills_the_form_with_reasons_and_leaves_it_editable(app):
    at = app("app_pages/train.py")
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.number_input(key="train_option_shapes3d_num_samples").set_value(40)
    at.number_input(key="train_option_shapes3d_size").set_value(8)
    at.number_input(key="train_batch_size").set_value(32)
    at.toggle(key="train_plan_lr_test").set_value(False).run()
    assert not [block for block in at.markdown if "Why the plan chose" in block.value]
    at.button(key="train_plan").click().run(timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    # The form now holds the plan: resnet3d fits 8-voxel edges, 40 samples are cross-validated, etc.
    assert at.selectbox(key="train_architecture").value == "resnet3d"
    assert at.number_input(key="train_folds").value == 5
    assert at.number_input(key="train_batch_size").value == 4
    assert at.toggle(key="train_augment").value is True
    assert at.toggle(key="train_early_stopping").value is True
    assert at.number_input(key="train_option_shapes3d_num_samples").value == 40  # the knobs asked for are kept
    reasons = _reasons(at)
    assert "**Batch size**: " in reasons and "batches per epoch" in reasons
    assert "**Width multiplier**: " in reasons and "per training sample" in reasons
    assert "**Normalisation**: " in reasons and "**Cross-validation folds**: " in reasons
    assert "range test was skipped" in reasons
    assert any("Planned for shapes3d: 40 samples" in unescape_markdown(c.value) for c in at.caption)
    # Any field can still be changed before launching; the reason then says the person changed it.
    at.number_input(key="train_batch_size").set_value(8).run()
    assert at.number_input(key="train_batch_size").value == 8
    assert "**Batch size** (you changed it): " in _reasons(at)
    assert not at.error, [e.value for e in at.error]


def test_a_plan_that_fails_is_one_sentence(app, monkeypatch):
    from engine import probe
    from engine.errors import LabError

    def refuse(*args, **kwargs):
        raise LabError("The plan could not be made: the dataset is gone.")

    monkeypatch.setattr(probe, "plan", refuse)
    at = app("app_pages/train.py")
    at.button(key="train_plan").click().run()
    assert not at.exception
    assert [unescape_markdown(e.value) for e in at.error] == ["The plan could not be made: the dataset is gone."]
