"""The effective execution a worker recorded (execution.json) is shown on Compare, Runs and Inspect (AppTest)."""

from __future__ import annotations

from engine import paths
from engine.machine import execution
from tests.fake_runs import compare_run, synthetic_config
from ui.text import unescape_markdown

RECORDED = execution.Execution(
    precision="mixed_bfloat16", precision_reason="auto: the CPU supports bfloat16 (amx_bf16)", xla=False,
    xla_reason="auto: XLA off", device="cpu", input_cache=True, input_reason="volumes cached in memory",
)


def _runs(store):
    first, second = (compare_run(store, synthetic_config(index, 5), seed=index) for index in range(2))
    execution.save(paths.run_dir(first), RECORDED)  # the second predates the record
    return first, second


def test_compare_shows_each_runs_execution_and_not_recorded_for_an_old_run(app, store):
    first, second = _runs(store)
    at = app("app_pages/compare.py", runs=f"{first},{second}")
    assert not at.exception, [e.value for e in at.exception]
    table = next(frame.value for frame in at.dataframe if "precision" in frame.value.index)
    assert list(table.loc["precision"]) == ["mixed_bfloat16", "not recorded"]
    assert table.loc["input"].iloc[0] == "in memory"


def test_runs_page_captions_the_execution_of_a_selected_run(app, store):
    first, _ = _runs(store)
    at = app("app_pages/runs.py", runs=str(first))
    assert not at.exception, [e.value for e in at.exception]
    captions = [unescape_markdown(caption.value) for caption in at.caption]
    assert f"Run {first}: mixed_bfloat16, XLA off, one CPU, volumes cached in memory" in captions, captions
