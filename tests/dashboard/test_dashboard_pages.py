"""AppTest tests of every page: empty store, finished / running / failed runs, the Train form."""

from __future__ import annotations

import time

from engine.store import open_store
from tests.fake_runs import tiny_config
from ui.text import unescape_markdown


def _no_exceptions(at):
    assert not at.exception, [e.value for e in at.exception]


# ------------------------------------------------------------------ Home
def test_home_on_an_empty_store_shows_getting_started(app, page_text):
    at = app()
    _no_exceptions(at)
    assert at.title[0].value == "Conv3D Lab"
    assert at.button(key="home_demo").label == "Start the sample run"
    assert "No runs yet" in page_text(at)


def test_home_demo_run_queues_digits3d_tutorial3d_and_opens_it_on_runs(app, make_run):
    busy = make_run("running", epochs_done=1)  # holds the CPU slot: the demo stays queued, no worker starts
    at = app()
    at.button(key="home_demo").click().run()
    _no_exceptions(at)
    store = open_store()
    demo = store.list_runs(limit=1)[0]
    assert demo.id != busy
    assert (demo.dataset, demo.architecture, demo.status) == ("digits3d", "tutorial3d", "queued")
    assert demo.epochs_total == 3 and demo.config.data.options == {"num_samples": 500}
    assert at.title[0].value == "Runs"
    assert at.query_params["runs"] == str(demo.id)
    assert at.multiselect(key="runs_selected").value == [demo.id]


# ------------------------------------------------------------------ Runs
def test_runs_on_an_empty_store_says_how_to_start(app, page_text):
    at = app("app_pages/runs.py")
    _no_exceptions(at)
    assert "No runs yet" in page_text(at)
    assert not at.dataframe


def test_runs_shows_finished_running_and_failed_runs(app, make_run, page_text):
    finished = make_run("finished", epochs_done=5, name="good", batches=3,
                        test_metrics={"accuracy": 0.91, "loss": 0.3})
    running = make_run("running", epochs_done=2, name="live", batches=4)
    failed = make_run("failed", epochs_done=1, name="bad",
                      error="The loss became NaN in epoch 2; lower the learning rate.",
                      traceback="Traceback (most recent call last):\n  ...\nRunFailed")
    at = app("app_pages/runs.py", runs=f"{finished},{running},{failed}")
    _no_exceptions(at)

    table = at.dataframe[0].value
    assert list(table["id"]) == [failed, running, finished]  # newest first
    assert list(table["status"]) == ["✗ failed", "● running", "✓ finished"]
    assert list(table["epoch"]) == ["1/5", "2/5", "5/5"]
    assert table["best"][2].startswith("val_loss 0.24")

    assert at.multiselect(key="runs_selected").value == [finished, running, failed]
    assert at.get("plotly_chart"), "no live curves drawn"
    # The running run has a progress bar with an ETA and a Stop button; the others none.
    progress = at.get("progress")
    assert len(progress) == 1 and "epoch 2/5" in progress[0].proto.text and "left" in progress[0].proto.text
    assert at.button(key=f"runs_stop_{running}")
    assert "The loss became NaN in epoch 2" in page_text(at)
    assert [m.value for m in at.metric] == ["0.91", "0.3"]


def test_runs_selection_round_trips_through_the_url(app, make_run):
    first = make_run("finished", epochs_done=2)
    second = make_run("finished", epochs_done=3)
    at = app("app_pages/runs.py", runs=f"{first},999,junk")  # unknown ids and junk are dropped
    assert at.multiselect(key="runs_selected").value == [first]
    assert at.query_params["runs"] == str(first)
    at.multiselect(key="runs_selected").select(second).run()
    assert at.query_params["runs"] == f"{first},{second}"
    at.multiselect(key="runs_selected").unselect(first).unselect(second).run()
    assert "runs" not in at.query_params
    _no_exceptions(at)


def test_runs_without_a_url_selection_shows_the_newest_run(app, make_run):
    make_run("finished", epochs_done=2)
    newest = make_run("finished", epochs_done=1)
    at = app("app_pages/runs.py")
    assert at.multiselect(key="runs_selected").value == [newest]
    assert at.query_params["runs"] == str(newest)


def test_runs_stop_a_queued_run_and_resume_it(app, make_run):
    make_run("running", epochs_done=1)  # the busy slot keeps the other run queued
    queued = make_run("queued")
    at = app("app_pages/runs.py", runs=str(queued))
    at.button(key=f"runs_stop_{queued}").click().run()
    _no_exceptions(at)
    assert open_store().get_run(queued).status == "stopped"
    at.button(key=f"runs_resume_{queued}").click().run()
    _no_exceptions(at)
    assert open_store().get_run(queued).status == "queued"


def test_runs_live_panel_reads_only_new_metric_rows(app, make_run, store):
    running = make_run("running", epochs_done=1, config=tiny_config(epochs=4))
    at = app("app_pages/runs.py", runs=str(running))
    cache = at.session_state["metric_cache"]
    assert sorted(cache.get(running).epochs) == [1]
    seen = cache.get(running).after_id
    store.log_metrics(running, [{"kind": "epoch", "epoch": 2, "name": "loss", "value": 0.4},
                                {"kind": "epoch", "epoch": 2, "name": "val_loss", "value": 0.5}])
    store.update_run(running, epochs_done=2, heartbeat_at=time.time())
    at.run()
    cache = at.session_state["metric_cache"]
    assert sorted(cache.get(running).epochs) == [1, 2]
    assert cache.get(running).after_id > seen
    _no_exceptions(at)


def test_runs_page_with_50_runs_renders_in_under_a_second(app, make_run):
    for index in range(50):
        make_run("finished", epochs_done=3, name=f"run {index}")
    at = app("app_pages/runs.py")  # the first run warms imports and caches
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    print(f"\nRuns page with 50 runs rendered in {seconds * 1000:.0f} ms (AppTest)")
    _no_exceptions(at)
    assert len(at.dataframe[0].value) == 50
    assert seconds < 1.0


# ----------------------------------------------------------------- Train
def test_train_shows_dataset_preview_and_model_summary(app, fake_probe):
    at = app("app_pages/train.py")
    _no_exceptions(at)
    assert at.selectbox(key="train_dataset").value == "digits3d"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Samples"] == "1797"
    assert metrics["Volume"] == "16³"
    assert metrics["Classes"] == "10"
    assert metrics["Parameters"] == "1,234,567"
    assert len(at.get("plotly_chart")) == 2  # class balance and slices
    assert len(at.dataframe[0].value) == 3
    model_config, input_shape, classes, batch = fake_probe[-1]
    assert (model_config["architecture"], input_shape, classes, batch) == ("tutorial3d", (16, 16, 16, 1), 10, 32)
    # Knobs left at the preset's values are sent as None (the preset decides).
    assert model_config["dropout_rate"] is None and model_config["batchnorm"] is None


def test_train_switching_dataset_shows_its_knobs(app):
    at = app("app_pages/train.py")
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.number_input(key="train_option_shapes3d_num_samples").set_value(16)
    at.number_input(key="train_option_shapes3d_size").set_value(8).run()
    _no_exceptions(at)
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Samples"], metrics["Volume"], metrics["Classes"]) == ("16", "8³", "2")
    assert at.selectbox(key="train_option_shapes3d_mode").value == "shape"


def test_train_invalid_input_names_each_field_and_creates_no_run(app, page_text):
    at = app("app_pages/train.py")
    at.text_input(key="train_name").input("x" * 250)
    at.number_input(key="train_val_fraction").set_value(0.0)
    at.number_input(key="train_test_fraction").set_value(0.9)
    at.number_input(key="train_width_multiplier").set_value(0.0)
    at.button(key="train_launch").click().run()
    _no_exceptions(at)
    errors = [unescape_markdown(e.value) for e in at.error]  # messages are escaped Markdown
    assert any(e.startswith("name must be text of at most 200 characters") for e in errors)
    assert any(e.startswith("data.val_fraction is 0.0") for e in errors)
    assert any(e.startswith("model.width_multiplier is 0.0") for e in errors)
    assert any(e.startswith("No run was created") for e in errors)
    assert open_store().list_runs() == []
    assert at.title[0].value == "Train"


def test_train_launch_queues_the_configured_run_and_opens_runs(app, make_run):
    busy = make_run("running", epochs_done=1)  # no worker is started for the new run
    at = app("app_pages/train.py")
    at.text_input(key="train_name").input("tiny shapes")
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.number_input(key="train_option_shapes3d_num_samples").set_value(16)
    at.number_input(key="train_epochs").set_value(2)
    at.selectbox(key="train_optimizer").select("sgd").run()
    at.number_input(key="train_momentum").set_value(0.8)
    at.number_input(key="train_dropout_rate_tutorial3d").set_value(0.25)
    at.button(key="train_launch").click().run()
    _no_exceptions(at)
    run = open_store().list_runs(limit=1)[0]
    assert run.id != busy and run.name == "tiny shapes"
    config = run.config
    assert config.data.dataset == "shapes3d" and config.data.options["num_samples"] == 16
    assert config.training.optimizer == "sgd" and config.training.momentum == 0.8
    assert config.training.epochs == 2
    assert config.model.dropout_rate == 0.25
    assert at.title[0].value == "Runs"
    assert at.query_params["runs"] == str(run.id)


def test_train_too_small_volume_for_the_architecture_is_a_sentence(app, fake_probe):
    from engine.errors import ConfigError
    from engine import probe

    def too_small(*args, **kwargs):
        raise ConfigError(["The input shape (6, 6, 6, 1) is too small for the kerasio3d architecture."])

    probe.describe_model = too_small  # restored by fake_probe's monkeypatch
    at = app("app_pages/train.py")
    _no_exceptions(at)
    assert any("too small for the kerasio3d" in e.value for e in at.error)


def test_train_padding_knob_reaches_the_config(app):
    at = app("app_pages/train.py")
    at.selectbox(key="train_architecture").set_value("kerasio3d").run()
    assert at.selectbox(key="train_padding_kerasio3d").value == "valid"  # the preset's reference
    assert any("too small for the kerasio3d architecture" in e.value for e in at.error)
    at.selectbox(key="train_padding_kerasio3d").set_value("same").run()
    assert not at.exception
    assert not any("too small" in e.value for e in at.error)


def test_train_form_bounds_come_from_the_one_set_of_limits(app):
    """The form, the config check and the model registry share one limit per knob."""
    from engine.config import LIMITS

    at = app("app_pages/train.py")
    assert at.number_input(key="train_width_multiplier").max == LIMITS["model.width_multiplier"].high
    assert at.number_input(key="train_epochs").min == LIMITS["training.epochs"].low
    assert at.number_input(key="train_batch_size").max == LIMITS["training.batch_size"].high
    # The run's seed and the dataset generator's seed are named apart.
    labels = [widget.label for widget in at.number_input]
    assert "Run seed" in labels and "Generator seed" in labels and "Seed" not in labels


def test_train_offers_padding_only_where_the_preset_honours_it(app):
    at = app("app_pages/train.py")
    assert at.selectbox(key="train_padding_tutorial3d").value == "valid"
    at.selectbox(key="train_architecture").select("vgg3d").run()
    _no_exceptions(at)
    assert not [box for box in at.selectbox if box.key == "train_padding_vgg3d"]
    assert any("always 'same' in this architecture" in caption.value for caption in at.caption)
