"""Issue 22: dataset owners, the throttled password gate, read-only share links, no server paths on a demo.

Engine checks are called as the dashboard calls them (``actor`` / ``owner``, ``demo_mode``); pages are
driven with AppTest and ``at.secrets``. The throttle's clock is a fake one the tests move forward.
"""

from __future__ import annotations

import base64
import json
import logging
import stat
import time

import pytest
from streamlit.testing.v1 import AppTest

from engine import actors, datasets, jobs
from engine.compare import curation
from engine.hosting import share
from engine.datasets import imported
from engine.errors import LabError
from tests.dashboard.conftest import APP, APP_TIMEOUT_S
from tests.datasets.scans import write_medmnist
from ui import access, throttle
from ui.text import unescape_markdown

PASSWORD = "correct horse"


def errors(at) -> list[str]:
    return [unescape_markdown(e.value) for e in at.error]


def warnings(at) -> list[str]:
    return [unescape_markdown(e.value) for e in at.warning]


def unlocked(at) -> bool:
    return "_access_unlocked" in at.session_state and at.session_state["_access_unlocked"] is True


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def scans(tmp_path):
    (tmp_path / "scans").mkdir()
    write_medmnist(tmp_path / "scans" / "organ3d.npz", sizes=(24, 8, 8), edge=8)
    return tmp_path / "scans" / "organ3d.npz"


# ------------------------------------------------------------------ 3. datasets have owners
def test_an_import_records_its_owner_and_on_a_demo_only_the_owner_deletes_or_replaces_it(store, scans):
    datasets.import_dataset(scans, "mine", actor="session-a", demo_mode=True)
    datasets.import_dataset(scans, "operators")  # the CLI: no actor
    assert imported.manifest("mine")["owner"] == "session-a"
    assert imported.manifest("operators")["owner"] is None
    assert datasets.dataset_info("mine")["owner"] == "session-a"

    with pytest.raises(imported.NotYourDatasetError, match="imported by another visitor of this demo"):
        datasets.delete_imported("mine", actor="session-b", demo_mode=True)
    with pytest.raises(imported.NotYourDatasetError, match="another visitor.*not replace it"):
        datasets.import_dataset(scans, "mine", replace=True, actor="session-b", demo_mode=True)
    with pytest.raises(imported.NotYourDatasetError, match="imported by the lab's operator"):
        datasets.delete_imported("operators", actor="session-a", demo_mode=True)
    assert imported.exists("mine") and imported.exists("operators")
    assert not datasets.may_change_imported("operators", "session-a", demo_mode=True)
    assert datasets.may_change_imported("mine", "session-a", demo_mode=True)

    # The owner replaces and deletes its own; the operator's CLI (no actor) may do anything.
    datasets.import_dataset(scans, "mine", replace=True, actor="session-a", demo_mode=True)
    datasets.delete_imported("mine", actor="session-a", demo_mode=True)
    datasets.delete_imported("operators")
    assert not imported.exists("mine") and not imported.exists("operators")


def test_outside_a_demo_anyone_who_may_change_things_deletes_a_dataset(store, scans):
    datasets.import_dataset(scans, "theirs", actor="session-a")
    datasets.delete_imported("theirs", actor="session-b", demo_mode=False)
    assert not imported.exists("theirs")


def test_the_data_page_offers_no_delete_of_another_visitors_or_the_operators_dataset(store, scans):
    datasets.import_dataset(scans, "operators")  # from the CLI: its source is a server path
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
    at.secrets["demo"] = True
    at.session_state["data_browse"] = "operators"
    at.switch_page("app_pages/data.py").run()
    no_exceptions(at)
    shown = "\n".join(element.value for element in at.text)
    assert "Source: server: organ3d.npz" in shown and str(scans.parent) not in shown
    assert at.button(key="data_delete").disabled
    assert any("read-only to you: the lab's operator imported it" in c.value for c in at.caption)
    # A confirm button reached anyway (a stale or crafted session) is disabled too; the engine refuses the
    # delete whatever the page does (the test above).
    at.session_state["data_confirm_delete"] = "operators"
    at.run()
    assert at.button(key="data_delete_confirm").disabled
    assert imported.exists("operators")


# ------------------------------------------------------------------ 4. the throttled password gate
class FakeClock:
    def __init__(self):
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(throttle, "THROTTLE", throttle.FailureThrottle(clock=fake))
    return fake


def test_the_delay_is_free_for_five_failures_then_doubles_up_to_a_cap():
    assert [throttle.delay_after(n) for n in range(1, 9)] == [0, 0, 0, 0, 0, 2, 4, 8]
    assert throttle.delay_after(100) == throttle.MAX_DELAY_S


def locked_session() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
    at.secrets[access.PASSWORD_KEY] = PASSWORD
    at.run()
    return at


def try_password(at: AppTest, password: str) -> AppTest:
    at.text_input(key="access_password").input(password)
    return at.button(key="access_unlock").click().run()


def test_the_password_gate_slows_down_after_five_wrong_passwords(store, clock, caplog):
    caplog.set_level(logging.WARNING, logger="conv3d_lab.access")
    at = locked_session()
    for _ in range(5):
        try_password(at, "wrong")
        assert errors(at) == ["That is not the lab's password."]
    try_password(at, "wrong")  # the sixth: the next try waits 2 s
    [sentence] = errors(at)
    assert "Too many wrong passwords" in sentence and "the next try is allowed in 2 s (at " in sentence
    assert "6 wrong in a row" in caplog.records[-1].getMessage() and "session:" in caplog.records[-1].getMessage()

    # During the wait even the right password is refused, before it is compared; the page says when.
    try_password(at, PASSWORD)
    assert not unlocked(at)
    assert any("the next try is allowed in 2 s" in w for w in warnings(at))
    assert at.text_input(key="access_password")  # still locked
    clock.now += 1
    try_password(at, "wrong")  # still inside the wait: not counted, not compared
    assert throttle.THROTTLE.failures(f"session:{at.session_state['_access_throttle_session']}") == 6
    clock.now += 1.5
    try_password(at, "wrong")  # the seventh: 4 s
    assert "allowed in 4 s" in errors(at)[0]
    clock.now += 4.5
    try_password(at, PASSWORD)
    no_exceptions(at)
    assert unlocked(at)
    assert throttle.THROTTLE.failures(f"session:{at.session_state['_access_throttle_session']}") == 0


def test_a_new_session_of_the_same_client_meets_the_same_wait_and_another_client_does_not(
        store, clock, monkeypatch):
    client = {"key": "client:203.0.113.7"}
    monkeypatch.setattr(access, "_client_key", lambda: client["key"])
    first = locked_session()
    for failures in range(1, 9):
        try_password(first, "wrong")
        if failures < 8:
            clock.now += throttle.delay_after(failures) + 0.5  # each try after its wait: all eight count
    assert "allowed in 8 s" in errors(first)[0]
    second = locked_session()  # a fresh session (a new tab, a dropped cookie) from the same address
    assert any("the next try is allowed in 8 s" in w for w in warnings(second))
    try_password(second, PASSWORD)
    assert not unlocked(second)
    client["key"] = "client:198.51.100.9"
    third = locked_session()
    assert not warnings(third)
    try_password(third, PASSWORD)
    assert unlocked(third)


def test_a_trusted_proxys_forwarded_address_is_the_client_and_is_ignored_untrusted(monkeypatch):
    headers = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7", "Host": "lab"}

    class Context:
        def __init__(self):
            self.headers = headers
            self.ip_address = None

    monkeypatch.setattr(access.st, "context", Context())
    monkeypatch.setattr(access, "_browser_token_of_session", lambda: None)
    monkeypatch.setenv(access.TRUSTED_PROXY_ENV, "1")
    monkeypatch.setattr(access, "_secret", lambda name, default=None: default)
    assert access._client_key() == "client:203.0.113.7"  # the address the proxy appended, not the client's claim
    monkeypatch.setenv(access.TRUSTED_PROXY_ENV, "0")
    assert access._client_key() is None


# ------------------------------------------------------------------ 8. read-only share links
def test_a_share_token_opens_its_view_until_expiry_revocation_or_rotation(store, make_run, lab_home):
    run_id = make_run("finished", epochs_done=2)
    token, view = share.mint("run", [run_id], store)
    assert share.verify(token, store) == view and view.ids == (run_id,)
    assert view.kind == "run" and 7 * 86400 - 5 < view.expires_at - time.time() <= 7 * 86400 + 1
    assert stat.S_IMODE(share.key_path().stat().st_mode) == 0o600

    body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["r"] = [run_id + 1]  # another run, with the old signature
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode() + "." + signature
    for bad in (forged, token[:-2], "", "x.y", token.replace(".", "")):
        with pytest.raises(share.ShareLinkError, match="not valid"):
            share.verify(bad, store)

    old, _ = share.mint("run", [run_id], store, days=7, now=1_000_000)
    with pytest.raises(share.ShareLinkError, match="expired on 1970-01-"):
        share.verify(old, store)

    assert share.revoke(share.link(token, "https://lab.example"), store) == (view.token_id, True)
    with pytest.raises(share.ShareLinkError, match="revoked"):
        share.verify(token, store)

    other, _ = share.mint("compare", [run_id, make_run("finished", epochs_done=1)], store)
    share.verify(other, store)
    share.rotate_key()
    with pytest.raises(share.ShareLinkError, match="not valid"):
        share.verify(other, store)


@pytest.mark.parametrize(("kind", "ids", "sentence"), [
    ("runs", [1], "not 'runs'"), ("run", [], "by its id"), ("run", [1, 2], "give one id"), ("run", [999], "no run"),
    ("sweep", [5], "no sweep"),
])
def test_a_share_link_names_what_exists(store, make_run, kind, ids, sentence):
    make_run("finished", epochs_done=1)
    with pytest.raises(LabError, match=sentence):
        share.mint(kind, ids, store)


def test_a_share_actor_is_refused_every_change_even_outside_a_demo(store, make_run, scans):
    finished = make_run("finished", epochs_done=2)
    running = make_run("running", epochs_done=1)
    datasets.import_dataset(scans, "kept")
    actor = actors.share_actor("abc123")
    calls = [
        lambda: jobs.stop(running, store=store, owner=actor),
        lambda: jobs.resume(finished, store=store, owner=actor),
        lambda: jobs.launch(store.get_run(finished).config, store=store, owner=actor),
        lambda: curation.set_tags(store, finished, ["x"], owner=actor),
        lambda: curation.set_notes(store, finished, "x", owner=actor),
        lambda: curation.set_archived(store, finished, True, owner=actor),
        lambda: curation.delete_run(store, finished, owner=actor),
        lambda: datasets.delete_imported("kept", actor=actor),
        lambda: datasets.import_dataset(scans, "new", actor=actor),
    ]
    for call in calls:
        with pytest.raises(actors.ReadOnlyError, match="read-only share link"):
            call()
    assert len(store.list_runs()) == 2 and imported.exists("kept") and not imported.exists("new")
    assert store.get_run(finished).tags == () and store.get_run(running).status.value == "running"


def summary_runs(at) -> list[str]:
    """The runs in the Compare summary table."""
    [frame] = [frame.value for frame in at.dataframe if "run" in frame.value.columns and "run id" not in frame.value]
    return [str(run) for run in frame["run"]]


def shared_session(token: str, **secrets) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
    for key, value in secrets.items():
        at.secrets[key] = value
    at.query_params["share"] = token
    at.run()
    return at


def test_a_share_link_opens_its_view_read_only_in_a_private_lab_and_nothing_else(store, make_run, page_text):
    shared = make_run("finished", epochs_done=3, name="shared run")
    hidden = make_run("finished", epochs_done=3, name="hidden run")
    secrets = {access.PASSWORD_KEY: PASSWORD, "private": True}

    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
    for key, value in secrets.items():
        at.secrets[key] = value
    at.run()
    assert "This lab is private" in page_text(at) and "hidden run" not in page_text(at)

    token, view = share.mint("run", [shared], store)
    at = shared_session(token, **secrets)
    no_exceptions(at)
    text = page_text(at)
    assert f"Run #{shared}" in text and "read-only view shared with you" in text
    assert "hidden run" not in text and "This lab is private" not in text
    assert "access_password" not in {widget.key for widget in at.text_input}  # no gate in front of a share link
    assert [button.key for button in at.button] == []  # no tags / notes / delete editor, no share button
    assert at.session_state["_access_share_token"] == token
    # The session cannot be steered to another page: there is only this one.
    at.switch_page("app_pages/shared.py").run()
    no_exceptions(at)

    assert summary_runs(at) == [f"#{shared} shared run"]
    compare_token, _ = share.mint("compare", [shared, hidden], store)
    compared = shared_session(compare_token, **secrets)
    assert f"Comparison of runs #{shared}, #{hidden}" in page_text(compared)
    assert summary_runs(compared) == [f"#{shared} shared run", f"#{hidden} hidden run"]

    share.revoke(view.token_id, store)
    at.run()  # the open session: the next rerun is refused
    assert any("revoked" in e for e in errors(at)) and "shared run" not in page_text(at)
    expired, _ = share.mint("run", [shared], store, days=1, now=1_000_000)
    at = shared_session(expired, **secrets)
    assert any("expired" in e for e in errors(at)) and f"Run #{shared}" not in page_text(at)


def test_the_share_button_shows_a_link_that_opens(store, make_run, page_text):
    run_id = make_run("finished", epochs_done=2)
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
    at.run()
    at.switch_page("app_pages/runs.py")
    at.query_params["runs"] = str(run_id)
    at.run()
    at.button(key="runs_share").click().run()
    no_exceptions(at)
    [code] = [element.value for element in at.code if "?share=" in element.value]
    token = code.split("?share=")[1]
    assert share.verify(token, store).ids == (run_id,)


def test_the_share_cli_makes_revokes_and_rotates_links(store, make_run, capsys, monkeypatch):
    from tests.cli_in_process import run_cli

    first, second = make_run("finished", epochs_done=2), make_run("finished", epochs_done=1)
    monkeypatch.setenv(share.URL_ENV, "https://lab.example.org/")
    code, out, _ = run_cli(capsys, "share", "run", str(first), "--days", "2")
    assert code == 0 and out.startswith("https://lab.example.org/?share=")
    assert f"Run #{first}, read-only, until " in out
    token = out.split("?share=")[1].split()[0]
    token_id = out.rsplit("share revoke ", 1)[1].split("`")[0]
    assert 2 * 86400 - 5 < share.verify(token, store).expires_at - time.time() <= 2 * 86400 + 1

    code, out, _ = run_cli(capsys, "share", "compare", str(first), str(second), "--json", "--url", "http://x:1")
    assert code == 0 and json.loads(out)["ids"] == [first, second] and json.loads(out)["url"].startswith("http://x:1/?")
    compare_token = json.loads(out)["url"].split("?share=")[1]

    assert run_cli(capsys, "share", "revoke", token_id)[1].strip().endswith("is revoked: it no longer opens.")
    assert "was revoked already" in run_cli(capsys, "share", "revoke", token_id)[1]
    with pytest.raises(share.ShareLinkError, match="revoked"):
        share.verify(token, store)
    share.verify(compare_token, store)
    assert run_cli(capsys, "share", "rotate")[0] == 0
    with pytest.raises(share.ShareLinkError, match="not valid"):
        share.verify(compare_token, store)

    code, _, err = run_cli(capsys, "share", "run", "999")
    assert code == 2 and err.startswith("error: There is no run with id 999") and "Traceback" not in err
    code, _, err = run_cli(capsys, "share", "run", str(first), "--days", "0")
    assert code == 2 and "at most 365 days; 0 was asked" in err


def test_a_sweep_share_link_shows_its_trials_and_parallel_coordinates(store):
    from engine.runs import TrialOutcome
    from tests.fake_runs import tiny_config

    spec = {"base": tiny_config("base").to_dict(), "method": "random", "trials": 3, "metric": "val_accuracy",
            "direction": "maximize", "space": {"training.learning_rate": {"low": 1e-4, "high": 0.1, "log": True}}}
    sweep_id = store.create_sweep("shared sweep", spec)
    for value, rate in ((0.7, 1e-3), (0.8, 1e-2)):
        trial = store.claim_trial(sweep_id, 3, 3)
        store.set_trial(sweep_id, trial, params={"training.learning_rate": rate})
        store.end_trial(sweep_id, trial, TrialOutcome.COMPLETE, value)
    token, _ = share.mint("sweep", [sweep_id], store)
    at = shared_session(token, **{access.PASSWORD_KEY: PASSWORD, "private": True})
    no_exceptions(at)
    assert at.title[0].value == f"Sweep #{sweep_id}"
    assert [metric.value for metric in at.metric][0] == "2/3"
    assert at.get("plotly_chart") and [button.key for button in at.button] == []
