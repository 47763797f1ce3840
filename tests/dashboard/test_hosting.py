"""Hosted demo and access gate (issue 16): caps in the engine's launch path, run owners, the password gate.

Engine calls get ``owner`` / ``demo_mode`` as the dashboard passes them; pages are driven with
AppTest and ``at.secrets`` (``demo = true``, ``lab_password``). A fake "running" run on another
host holds the only slot, so nothing the tests queue starts a worker.
"""

from __future__ import annotations

import re
import secrets

import pytest

from engine import jobs, settings
from engine.compare import curation
from engine.hosting import demo
from engine.datasets import uploads
from engine.errors import DataError
from engine.store import open_store
from engine.runs import RunStatus
from tests.fake_runs import tiny_config as fake_config
from ui.text import unescape_markdown

PASSWORD = "correct horse"


def tiny_config(name: str, epochs: int = 2):
    """A config that passes validation (the fake runs' 8^3 volumes are too small for tutorial3d)."""
    config = fake_config(name, epochs=epochs)
    config.data.options["size"] = 12
    return config


def errors(at) -> list[str]:
    return [unescape_markdown(e.value) for e in at.error]


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


# ------------------------------------------------------------------ engine: caps
@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        (lambda c: setattr(c.training, "epochs", 21), "at most 20 epochs"),
        (lambda c: setattr(c.model, "width_multiplier", 1.5), "width multiplier of at most 1"),
        (lambda c: c.data.options.update(size=40), "at most 32 voxels per edge"),
        (lambda c: c.data.options.update(num_samples=2500), "at most 2,000 samples"),
    ],
)
def test_each_config_cap_is_a_sentence_and_nothing_is_queued(store, make_run, change, sentence):
    make_run("running", epochs_done=1)
    config = tiny_config("too big")
    change(config)
    before = len(store.list_runs())
    with pytest.raises(demo.DemoLimitError, match=sentence):
        jobs.launch(config, store=store, owner="session-a", demo_mode=True)
    assert len(store.list_runs()) == before


def test_the_same_config_launches_outside_demo_mode(store, make_run):
    make_run("running", epochs_done=1)
    config = tiny_config("big but allowed", epochs=21)
    run_id = jobs.launch(config, store=store, owner="session-a", demo_mode=False)
    assert store.get_run(run_id).owner == "session-a"


def test_runs_per_session_and_in_total_are_capped(store, make_run, monkeypatch):
    make_run("running", epochs_done=1, owner="session-b")  # another visitor's run holds the slot
    first, second = (jobs.launch(tiny_config(f"mine {i}"), store=store, owner="session-a", demo_mode=True)
                     for i in range(2))
    assert {store.get_run(first).owner, store.get_run(second).owner} == {"session-a"}
    with pytest.raises(demo.DemoLimitError, match="at most 2 runs queued or running; you have 2"):
        jobs.launch(tiny_config("third"), store=store, owner="session-a", demo_mode=True)
    # A k-fold launch counts k runs.
    folded = tiny_config("folds")
    folded.data.folds = 3
    with pytest.raises(demo.DemoLimitError, match="this launch adds 3"):
        jobs.launch(folded, store=store, owner="session-c", demo_mode=True)
    monkeypatch.setenv(settings.DEMO_CAP_ENV_PREFIX + "MAX_ACTIVE_RUNS_TOTAL", "3")
    with pytest.raises(demo.DemoLimitError, match="at most 3 runs at a time for all visitors together"):
        jobs.launch(tiny_config("everyone's"), store=store, owner="session-c", demo_mode=True)
    assert len(store.list_runs()) == 3


def test_caps_are_overridable_by_environment(monkeypatch):
    monkeypatch.setenv("CONV3D_LAB_DEMO_MAX_EPOCHS", "5")
    monkeypatch.setenv("CONV3D_LAB_DEMO_MAX_WIDTH_MULTIPLIER", "0.5")
    caps = settings.demo_caps()
    assert (caps.max_epochs, caps.max_width_multiplier) == (5, 0.5)
    monkeypatch.setenv("CONV3D_LAB_DEMO_MAX_EPOCHS", "many")
    with pytest.raises(ValueError, match="CONV3D_LAB_DEMO_MAX_EPOCHS"):
        settings.demo_caps()


# ------------------------------------------------------------------ engine: owners, imports
def test_another_sessions_run_cannot_be_stopped_resumed_or_edited_in_demo_mode(store, make_run):
    theirs = make_run("running", epochs_done=1, owner="session-b")
    stopped = make_run("stopped", epochs_done=0, owner="session-b")
    with pytest.raises(demo.NotYourRunError, match=f"Run #{theirs} was launched by another visitor"):
        jobs.stop(theirs, store=store, owner="session-a", demo_mode=True)
    assert store.get_run(theirs).status == RunStatus.RUNNING and not store.get_run(theirs).stop_requested
    with pytest.raises(demo.NotYourRunError, match="not resume it"):
        jobs.resume(stopped, store=store, owner="session-a", demo_mode=True)
    for action in (lambda: curation.set_tags(store, stopped, ["x"], owner="session-a", demo_mode=True),
                   lambda: curation.set_notes(store, stopped, "x", owner="session-a", demo_mode=True),
                   lambda: curation.set_archived(store, stopped, owner="session-a", demo_mode=True),
                   lambda: curation.delete_run(store, stopped, owner="session-a", demo_mode=True)):
        with pytest.raises(demo.NotYourRunError):
            action()
    run = store.get_run(stopped)
    assert (run.tags, run.notes, run.archived, run.status) == ((), "", False, RunStatus.STOPPED)
    # Its owner may; so may the operator (no owner: the CLI), and anyone outside demo mode.
    curation.set_tags(store, stopped, ["mine"], owner="session-b", demo_mode=True)
    curation.set_notes(store, stopped, "ops", demo_mode=True)
    curation.set_archived(store, stopped, owner="session-a", demo_mode=False)
    assert store.get_run(stopped).tags == ("mine",)


def test_demo_mode_imports_nothing_from_server_paths_and_caps_uploads(store, tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not import from folders on the server"):
        uploads.check_import_path(tmp_path, demo_mode=True)
    monkeypatch.setenv(settings.DEMO_ENV, "1")
    monkeypatch.setenv("CONV3D_LAB_DEMO_MAX_UPLOAD_BYTES", str(1024**2))
    with pytest.raises(DataError):
        uploads.check_import_path(tmp_path)
    from ui import uploads as ui_uploads

    with pytest.raises(demo.DemoLimitError, match="uploads of at most 1 MB; these files are 2.0 MB"):
        ui_uploads.stage_upload([("big.npz", b"x" * 2 * 1024**2)])


# ------------------------------------------------------------------ pages: demo mode
def test_demo_banner_states_the_limits_and_the_train_page_refuses_too_many_epochs(app, make_run, page_text):
    make_run("running", epochs_done=1)
    at = app()
    at.secrets["demo"] = True
    at.switch_page("app_pages/train.py").run()
    assert "runs are limited to 20 epochs" in page_text(at)
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.number_input(key="train_epochs").set_value(25)
    at.button(key="train_launch").click().run()
    no_exceptions(at)
    assert any("This demo trains at most 20 epochs per run" in e for e in errors(at))
    assert len(open_store().list_runs()) == 1
    at.number_input(key="train_epochs").set_value(3)
    at.button(key="train_launch").click().run()
    no_exceptions(at)
    newest = open_store().list_runs(limit=1)[0]
    assert newest.config.training.epochs == 3
    assert newest.owner == at.session_state["_access_session_id"]


def test_demo_runs_page_offers_stop_only_for_the_sessions_own_runs(app, make_run, page_text):
    theirs = make_run("running", epochs_done=1, owner="session-somebody-else")
    at = app()
    at.secrets["demo"] = True
    at.session_state["_access_session_id"] = "session-mine"  # what ui.access.identity() draws on first use
    mine = make_run("queued", owner="session-mine")
    at.switch_page("app_pages/runs.py")
    at.query_params["runs"] = f"{theirs},{mine}"
    at.run()
    no_exceptions(at)
    keys = {button.key for button in at.button}
    assert f"runs_stop_{mine}" in keys and f"runs_stop_{theirs}" not in keys
    assert f"runs_{theirs}_delete" not in keys and f"runs_{theirs}_save" not in keys
    assert f"Run #{theirs} is read-only here: another visitor launched it." in page_text(at)
    # Where the Stop button would be, a "read-only" caption whose help says why; none for the own run.
    read_only = [caption for caption in at.caption if caption.value == "read-only"]
    assert len(read_only) == 1 and "another visitor launched it" in read_only[0].help
    at.button(key=f"runs_stop_{mine}").click().run()
    assert open_store().get_run(mine).status == RunStatus.STOPPED


def test_demo_data_page_offers_uploads_only(app):
    at = app()
    at.secrets["demo"] = True
    at.session_state["data_browse"] = "shapes3d"
    at.switch_page("app_pages/data.py").run()
    no_exceptions(at)
    assert at.radio(key="data_source_kind").options == ["Upload files"]


# ------------------------------------------------------------------ identity across reloads
def test_a_cookie_value_is_a_token_only_in_the_shape_the_lab_mints():
    from ui import access

    token = secrets.token_urlsafe(32)
    assert access.browser_token(token) == token
    for bad in (None, "", token[:-1], token + "A", token[:-1] + "=", token[:-1] + ";",
                'x" onload="alert(1)' + "a" * 24, "é" * 43):
        assert access.browser_token(bad) is None, bad


def test_a_browser_identity_is_stable_and_does_not_reveal_the_token():
    from ui import access

    token, other = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    owner = access.browser_identity(token)
    assert owner == access.browser_identity(token) != access.browser_identity(other)
    assert re.fullmatch(r"session-[0-9a-f]{12}", owner)
    assert token not in owner and token[:12] not in owner


@pytest.fixture
def browser_cookies(monkeypatch):
    """Sessions as if a browser were behind them (AppTest sends no request and cannot seed
    ``st.context.cookies``): ``browser_cookies[BROWSER_COOKIE] = token`` is what the next session
    connecting sends; an empty dict is a browser without the cookie."""
    from ui import access

    jar: dict[str, str] = {}
    monkeypatch.setattr(access, "_request_cookies", lambda: dict(jar))
    return jar


def cookie_scripts(at) -> list[str]:
    """The bodies of the ``st.html`` elements that set the identity cookie."""
    from ui import access

    return [element.proto.body for element in at.get("html") if access.BROWSER_COOKIE in element.proto.body]


def test_without_a_browser_the_identity_is_the_sessions_and_no_cookie_is_set(app, make_run):
    run_id = make_run("finished", epochs_done=2)
    ids = set()
    for _ in range(2):
        at = app()
        at.secrets["demo"] = True
        at.switch_page("app_pages/runs.py")
        at.query_params["runs"] = str(run_id)
        at.run()  # the run's buttons ask for this session's identity
        no_exceptions(at)
        assert not cookie_scripts(at) and "_access_browser_token" not in at.session_state
        ids.add(at.session_state["_access_session_id"])
    assert len(ids) == 2 and all(re.fullmatch(r"session-[0-9a-f]{12}", i) for i in ids)


def test_a_new_browser_gets_a_token_in_its_cookie_and_launches_as_its_hash(app, make_run, browser_cookies):
    from ui import access

    make_run("running", epochs_done=1)  # holds the only slot: nothing queued starts a worker
    at = app()
    at.secrets["demo"] = True
    at.switch_page("app_pages/train.py").run()
    no_exceptions(at)
    [script] = cookie_scripts(at)
    token = re.search(rf"{access.BROWSER_COOKIE}=([A-Za-z0-9_-]+);", script).group(1)
    assert access.browser_token(token) == token
    assert "Max-Age=2592000" in script and "SameSite=Strict" in script and "Path=/" in script
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.number_input(key="train_epochs").set_value(2)
    at.button(key="train_launch").click().run()
    no_exceptions(at)
    newest = open_store().list_runs(limit=1)[0]
    assert newest.owner == access.browser_identity(token)
    assert cookie_scripts(at) == [script]  # the same token on every page of the session


def test_after_a_reload_the_same_cookie_is_the_same_owner_and_another_browser_is_not(
        app, make_run, page_text, browser_cookies):
    from ui import access

    token = secrets.token_urlsafe(32)
    mine = make_run("queued", owner=access.browser_identity(token))  # launched before the reload (test above)
    theirs = make_run("running", epochs_done=1, owner=access.browser_identity(secrets.token_urlsafe(32)))

    def runs_page(cookie: str | None):
        browser_cookies.clear()
        if cookie is not None:
            browser_cookies[access.BROWSER_COOKIE] = cookie
        at = app()
        at.secrets["demo"] = True
        at.switch_page("app_pages/runs.py")
        at.query_params["runs"] = f"{theirs},{mine}"
        at.run()
        no_exceptions(at)
        return at, {button.key for button in at.button}

    after_reload, keys = runs_page(token)  # a new session, the same browser
    assert f"runs_stop_{mine}" in keys and f"runs_stop_{theirs}" not in keys
    assert cookie_scripts(after_reload) and token in cookie_scripts(after_reload)[0]  # the cookie's age restarts
    for other in (None, "not a token", secrets.token_urlsafe(32)):  # another browser, or a tampered cookie
        at, keys = runs_page(other)
        assert f"runs_stop_{mine}" not in keys, other
        assert f"Run #{mine} is read-only here: another visitor launched it." in page_text(at)
        assert token not in cookie_scripts(at)[0]
    after_reload.button(key=f"runs_stop_{mine}").click().run()
    assert open_store().get_run(mine).status == RunStatus.STOPPED


# ------------------------------------------------------------------ pages: password gate
def test_home_says_an_open_lab_is_open(app, page_text):
    assert "This lab is open" in page_text(app())


def test_without_the_password_a_session_cannot_launch_stop_delete_or_import(app, make_run, page_text):
    running = make_run("running", epochs_done=1)
    finished = make_run("finished", epochs_done=2)
    at = app()
    at.secrets[jobs_password_key()] = PASSWORD
    at.run()
    assert "This lab is open" not in page_text(at)
    assert at.text_input(key="access_password")
    at.button(key="home_demo").click().run()
    assert any("Unlock the lab with its password" in e for e in errors(at))

    at.switch_page("app_pages/train.py").run()
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.button(key="train_launch").click().run()
    no_exceptions(at)
    assert any("Unlock the lab with its password" in e for e in errors(at))
    assert len(open_store().list_runs()) == 2

    at.switch_page("app_pages/runs.py")
    at.query_params["runs"] = f"{running},{finished}"
    at.run()
    keys = {button.key for button in at.button}
    assert f"runs_stop_{running}" not in keys and f"runs_{finished}_delete" not in keys
    assert f"Run #{finished} is read-only here" in page_text(at)

    at.session_state["data_browse"] = "shapes3d"
    at.switch_page("app_pages/data.py").run()
    assert at.button(key="data_preview").disabled

    # A wrong password leaves it locked; the right one unlocks this session.
    at.text_input(key="access_password").input("wrong")
    at.button(key="access_unlock").click().run()
    assert "That is not the lab's password." in errors(at)
    assert at.button(key="data_preview").disabled
    at.text_input(key="access_password").input(PASSWORD)
    at.button(key="access_unlock").click().run()
    assert not at.button(key="data_preview").disabled
    at.switch_page("app_pages/runs.py")
    at.query_params["runs"] = f"{running},{finished}"
    at.run()
    keys = {button.key for button in at.button}
    assert f"runs_stop_{running}" in keys and f"runs_{finished}_delete" in keys


def jobs_password_key() -> str:
    from ui import access

    return access.PASSWORD_KEY


def test_a_cap_set_in_the_secrets_holds_the_engines_launch_check_and_stays_in_the_dashboard(app, page_text,
                                                                                           monkeypatch):
    """``demo_max_epochs`` in the secrets (not only CONV3D_LAB_DEMO_MAX_EPOCHS) is the cap the banner states
    and the engine's launch check applies; the test's own thread still reads the environment afterwards."""
    monkeypatch.delenv(settings.DEMO_ENV, raising=False)
    at = app()
    at.secrets["demo"] = True
    at.secrets["demo_max_epochs"] = 4
    at.switch_page("app_pages/train.py").run()
    assert "runs are limited to 4 epochs" in page_text(at)
    at.selectbox(key="train_dataset").select("shapes3d").run()
    at.number_input(key="train_epochs").set_value(5)
    at.button(key="train_launch").click().run()
    no_exceptions(at)
    assert any("This demo trains at most 4 epochs per run" in e for e in errors(at))
    assert open_store().list_runs() == []
    assert not settings.demo_mode() and settings.demo_caps().max_epochs == settings.DemoCaps().max_epochs
