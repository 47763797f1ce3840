"""A failed run shows its error sentence; the traceback and worker log sit behind collapsed
expanders, and in hosted-demo mode (CONV3D_LAB_DEMO=1) they are not shown at all."""

from __future__ import annotations

from engine import paths

TRACEBACK = 'Traceback (most recent call last):\n  File "/srv/lab/engine/training/run.py", line 1\nRunFailed'
LOG = "--- worker for run 1 on slot cpu\n/srv/lab/.venv/lib/python3.12/site-packages/keras/x.py: warning\n"


def _failed_run(make_run) -> int:
    run_id = make_run("failed", epochs_done=1, name="bad",
                      error="The loss became NaN in epoch 2; lower the learning rate.", traceback=TRACEBACK)
    (paths.run_dir(run_id) / "worker.log").write_text(LOG)
    return run_id


def _code_on_page(at) -> str:
    return "\n".join(code.value for code in at.code)


def test_traceback_and_log_are_collapsed_by_default(app, make_run, page_text, monkeypatch):
    monkeypatch.delenv("CONV3D_LAB_DEMO", raising=False)
    run_id = _failed_run(make_run)
    at = app("app_pages/runs.py", runs=str(run_id))
    assert not at.exception
    assert "The loss became NaN in epoch 2" in page_text(at)
    expanders = {expander.label: expander.proto.expanded for expander in at.expander}
    assert {label: expanders.get(label) for label in ("Traceback", "Worker log")} == {
        "Traceback": False, "Worker log": False,
    }
    assert "RunFailed" in _code_on_page(at) and "site-packages" in _code_on_page(at)  # there, behind a click


def test_hosted_demo_mode_shows_no_traceback_and_no_log(app, make_run, page_text, monkeypatch):
    monkeypatch.setenv("CONV3D_LAB_DEMO", "1")
    run_id = _failed_run(make_run)
    at = app("app_pages/runs.py", runs=str(run_id))
    assert not at.exception
    assert "The loss became NaN in epoch 2" in page_text(at)
    assert not {"Traceback", "Worker log"} & {expander.label for expander in at.expander}
    assert "/srv/lab" not in _code_on_page(at) + page_text(at)


def test_demo_mode_reads_the_environment(monkeypatch):
    from engine import settings

    for value, expected in (("1", True), ("true", True), ("yes", True), ("0", False), ("", False), ("no", False)):
        monkeypatch.setenv(settings.DEMO_ENV, value)
        assert settings.demo_mode() is expected
    monkeypatch.delenv(settings.DEMO_ENV)
    assert settings.demo_mode() is False
