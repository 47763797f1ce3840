"""AppTest tests of the Compare page (synthetic runs in the store, no training)."""

from __future__ import annotations

import json

import pytest

from engine import paths
from tests.fake_runs import compare_run, synthetic_config
from engine.store import open_store

EVIL = "[x](https://evil.example) <b>bold</b>"
PAGE = "app_pages/compare.py"


def _no_exceptions(at):
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def runs(store):
    return [compare_run(store, synthetic_config(index, 25), seed=index) for index in range(6)]


VIEW = {"metric": "accuracy", "curves": "val", "axis": "time", "group": "training.seed", "result": "val_loss",
        "at": "last", "smooth": "0.5"}
WIDGETS = {"metric": "compare_metric", "axis": "compare_axis", "group": "compare_group", "result": "compare_result",
           "at": "compare_at", "smooth": "compare_smooth"}


def _view(at) -> dict:
    values = {param: at.get(kind_of(key))[index_of(at, key)].value for param, key in WIDGETS.items()}
    values["curves"] = at.multiselect(key="compare_curves").value
    values["runs"] = at.multiselect(key="compare_selected").value
    return values


def kind_of(key):
    return {"compare_metric": "selectbox", "compare_group": "selectbox", "compare_result": "selectbox",
            "compare_axis": "radio", "compare_at": "radio", "compare_smooth": "slider"}[key]


def index_of(at, key):
    return [element.key for element in at.get(kind_of(key))].index(key)


def test_a_copied_url_restores_selection_metric_axis_and_grouping_in_a_fresh_session(app, runs):
    chosen = ",".join(map(str, [runs[3], runs[0], runs[4]]))
    first = app(PAGE, runs=chosen, **VIEW)
    _no_exceptions(first)
    view = _view(first)
    assert view == {"metric": "accuracy", "axis": "time", "group": "training.seed", "result": "val_loss",
                    "at": "last", "smooth": 0.5, "curves": ["val"], "runs": [runs[3], runs[0], runs[4]]}
    # Change things through the widgets: the URL follows.
    first.radio(key="compare_axis").set_value("epoch").run()
    first.selectbox(key="compare_group").set_value("model.architecture").run()
    first.multiselect(key="compare_selected").unselect(runs[0]).run()
    _no_exceptions(first)
    url = dict(first.query_params)
    assert url["axis"] == "epoch" and url["group"] == "model.architecture"
    assert url["runs"] == f"{runs[3]},{runs[4]}"
    # A fresh session opened with that URL shows the same view.
    second = app(PAGE, **url)
    _no_exceptions(second)
    assert _view(second) == _view(first)
    assert dict(second.query_params) == url


def test_the_page_shows_curves_summary_config_hyperparameters_and_confusion_matrices(app, runs, store):
    at = app(PAGE, runs=",".join(map(str, runs)), group="training.seed", result="val_accuracy", at="best")
    _no_exceptions(at)
    charts = {chart.proto.id.rsplit("-", 1)[-1] for chart in at.get("plotly_chart")}
    assert charts == {"compare_curves_chart", "compare_parallel", "compare_scatter",
                      f"compare_cm_{runs[0]}", f"compare_cm_{runs[1]}"}
    summary = _frame(at, "runs")
    # seeds 0, 1, 2: runs 0 and 3, 1 and 4, 2 and 5; each group's cell is "mean ± std".
    assert list(summary["runs"]) == ["2", "2", "2"]
    assert list(summary["run"]) == ["training.seed = 0 (2 runs)", "training.seed = 1 (2 runs)",
                                    "training.seed = 2 (2 runs)"]
    assert all(" ± " in cell for cell in summary["val_accuracy @ best"])
    config = _frame(at, store.get_run(runs[0]).label)
    assert "training.seed" in config.index and "data.dataset" not in config.index  # only what differs
    assert at.get("download_button")
    assert "val\\_accuracy at each run's best epoch" in " ".join(c.value for c in at.caption)


def _frame(at, column):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _markdown_bodies(at) -> list[str]:
    return [element.proto.body for kind in ("markdown", "caption", "info", "warning", "error", "subheader", "title")
            for element in getattr(at, kind) if hasattr(element.proto, "body")]


def test_user_strings_are_shown_as_text_never_as_links_or_tags(app, store):
    from ui.text import markdown_text

    evil = compare_run(store, synthetic_config(0, 8, name=EVIL), seed=0)
    other = compare_run(store, synthetic_config(1, 8), seed=1)
    store.update_run(evil, tags=[EVIL], notes=EVIL)
    for page in (PAGE, "app_pages/runs.py"):
        at = app(page, runs=f"{evil},{other}")
        _no_exceptions(at)
        bodies = _markdown_bodies(at)
        if page.endswith("runs.py"):  # the Runs page writes the name in Markdown: escaped
            assert any(markdown_text(EVIL) in body for body in bodies)
        for body in bodies:
            assert "](https://evil" not in body and "<b>" not in body, body
        charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
        assert charts
        names = []
        for figure in charts:
            text = json.dumps(figure)
            assert "<b>" not in text and "\\u003cb\\u003e" not in text
            names += [trace.get("name", "") for trace in figure["data"]]
        assert any("&lt;b&gt;bold&lt;/b&gt;" in name for name in names), page
    at = app(PAGE, runs=f"{evil},{other}")
    legend = [t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert legend[0].startswith("#1 [x](https://evil.example) &lt;b&gt;bold&lt;/b&gt;")


def test_runs_page_compare_selected_carries_the_selection(app, runs):
    at = app("app_pages/runs.py", runs=f"{runs[1]},{runs[2]}")
    _no_exceptions(at)
    (link,) = [element.proto for element in at.get("page_link") if element.proto.label.startswith("Compare")]
    assert link.label == "Compare selected (2)" and link.query_string == f"runs={runs[1]}%2C{runs[2]}"
    compare = app(PAGE, runs=f"{runs[1]},{runs[2]}")
    assert compare.multiselect(key="compare_selected").value == [runs[1], runs[2]]


def test_archived_runs_are_hidden_until_asked_for(app, runs, store):
    store.update_run(runs[0], archived=True)
    at = app(PAGE)
    _no_exceptions(at)
    table = [d for d in at.dataframe if "compare_table" in d.proto.id][0].value
    assert runs[0] not in list(table["id"]) and len(table) == len(runs) - 1
    at.toggle(key="compare_archived").set_value(True).run()
    table = [d for d in at.dataframe if "compare_table" in d.proto.id][0].value
    assert runs[0] in list(table["id"]) and at.query_params["archived"] == "1"


def test_tags_notes_and_delete_from_the_compare_page(app, runs, store):
    at = app(PAGE, runs=f"{runs[0]},{runs[1]}")
    at.selectbox(key="compare_admin_run").set_value(runs[1]).run()
    at.text_input(key=f"compare_{runs[1]}_tags").input("baseline, seed-sweep").run()
    at.text_area(key=f"compare_{runs[1]}_notes").input("overfits after epoch 10").run()
    at.button(key=f"compare_{runs[1]}_save").click().run()
    _no_exceptions(at)
    run = store.get_run(runs[1])
    assert run.tags == ("baseline", "seed-sweep") and run.notes == "overfits after epoch 10"
    folder = paths.run_dir(runs[1])
    at.button(key=f"compare_{runs[1]}_delete").click().run()
    assert "cannot be undone" in " ".join(w.value for w in at.warning)
    assert [r.id for r in store.list_runs()].count(runs[1]) == 1  # nothing deleted before the confirmation
    at.button(key=f"compare_{runs[1]}_delete_yes").click().run()
    _no_exceptions(at)
    assert runs[1] not in [r.id for r in open_store().list_runs()] and not folder.exists()
    assert at.multiselect(key="compare_selected").value == [runs[0]]
