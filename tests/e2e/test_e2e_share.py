"""Issue 22 in headless Chromium: dataset owners and no server paths on a demo; read-only share links.

Demo: browser A uploads and imports a dataset on the Data page; browser B (another context, so
another cookie and identity) finds neither A's dataset nor the operator's (imported from the CLI,
from a server folder) deletable, and no page it opens shows a server path; A deletes its own.
Share links: a private lab behind a password; a link made with `python -m engine share` opens its
run read-only in a fresh browser (no password, no menu, no editor), and a revoked link or one minted
with a past expiry is refused with a sentence. Screenshots: test-artifacts/share-*.png.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from engine import datasets
from engine.hosting import share
from engine.datasets import imported
from tests.fake_runs import fake_run
from tests.datasets.scans import write_medmnist
from tests.e2e.conftest import ARTIFACTS, REPO_ROOT, wait_for_app

pytestmark = pytest.mark.e2e

PASSWORD = "a long test phrase"
VIEWPORT = {"width": 1280, "height": 1100}
PAGES = [("", "Conv3D Lab"), ("data", "Data"), ("train", "Train"), ("runs", "Runs"), ("inspect", "Inspect"),
         ("compare", "Compare runs"), ("sweeps", "Sweeps")]


@pytest.fixture
def dashboard_env(request, tmp_path) -> dict[str, str]:
    env = {"CONV3D_LAB_STANDBY": "0"}
    if getattr(request, "param", "demo") == "private":
        secrets_file = tmp_path / "secrets.toml"
        secrets_file.write_text(f'private = true\nlab_password = "{PASSWORD}"\n')
        env["STREAMLIT_SECRETS_FILES"] = str(secrets_file)
    else:
        env["CONV3D_LAB_DEMO"] = "1"
    return env


def _store():
    from engine.store import open_store

    return open_store()


def _open(page, url: str, heading: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=60_000)
    wait_for_app(page)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=90_000)


def _screenshot(page, name: str) -> None:
    wait_for_app(page)
    page.screenshot(path=str(ARTIFACTS / f"share-{name}.png"), full_page=True)


def _browse(page, name: str) -> None:
    wait_for_app(page)
    page.locator(".st-key-data_browse").wait_for(timeout=60_000)
    if f"({name})" not in page.locator(".st-key-data_browse").inner_text():
        page.locator(".st-key-data_browse").click()
        page.get_by_role("option", name=re.compile(rf"\({name}\)")).click()
        wait_for_app(page)
    page.get_by_text("Imported from").first.wait_for()


@pytest.mark.parametrize("dashboard_env", ["demo"], indirect=True)
def test_a_visitor_cannot_delete_another_visitors_or_the_operators_dataset_nor_see_a_server_path(
        dashboard, browser_page, tmp_path):
    server_folder = tmp_path / "server-scans"
    server_folder.mkdir()
    write_medmnist(server_folder / "organ3d.npz", sizes=(24, 8, 8), edge=8)
    datasets.import_dataset(server_folder / "organ3d.npz", "operators")  # the operator's CLI
    upload = tmp_path / "upload" / "visitor_scans.npz"
    upload.parent.mkdir()
    write_medmnist(upload, sizes=(24, 8, 8), edge=8, seed=1)
    fake_run(_store(), "finished", epochs_done=3, name="a finished run")

    page_a = browser_page
    page_a.set_viewport_size(VIEWPORT)
    _open(page_a, f"{dashboard}/data", "Data")
    page_a.locator(".st-key-data_upload input[type='file']").set_input_files(str(upload))
    page_a.locator("[data-testid='stFileChip']").wait_for()
    wait_for_app(page_a)
    page_a.locator(".st-key-data_preview button").click()
    page_a.get_by_role("heading", name="Preview", exact=True).wait_for(timeout=60_000)
    wait_for_app(page_a)
    name_input = page_a.locator(".st-key-data_name input")
    name_input.fill("visitor_a")
    name_input.press("Enter")
    wait_for_app(page_a)
    page_a.locator(".st-key-data_import button").click()
    page_a.get_by_text(re.compile(r"Imported visitor_a: 40 samples")).wait_for(timeout=60_000)
    owner_a = imported.owner("visitor_a")
    assert owner_a and owner_a.startswith("session-")

    browser = page_a.context.browser
    context_b = browser.new_context(viewport=VIEWPORT)
    try:
        page_b = context_b.new_page()
        page_b.set_default_timeout(30_000)
        _open(page_b, f"{dashboard}/data", "Data")
        for name, why in (("visitor_a", "another visitor imported it"), ("operators", "the lab's operator imported it")):
            _browse(page_b, name)
            page_b.get_by_text(f"This dataset is read-only to you: {why}").wait_for()
            assert page_b.locator(".st-key-data_delete button").is_disabled(), name
        page_b.get_by_text("Source: server: organ3d.npz").wait_for()
        _screenshot(page_b, "demo-data-operators-dataset")
        seen = []
        for path, heading in PAGES:
            _open(page_b, f"{dashboard}/{path}", heading)
            text = page_b.locator("body").inner_text()
            seen.append(heading)
            for secret in (str(tmp_path), str(REPO_ROOT), os.environ["CONV3D_LAB_HOME"]):
                assert secret not in text, f"{heading} shows the server path {secret}"
        assert len(seen) == len(PAGES)
    finally:
        context_b.close()
    assert imported.exists("visitor_a") and imported.exists("operators")

    # A deletes its own (both buttons are enabled for the owner).
    page_a.reload()
    page_a.get_by_role("heading", name="Data", exact=True).wait_for(timeout=60_000)
    wait_for_app(page_a)
    _browse(page_a, "visitor_a")
    page_a.locator(".st-key-data_delete button").click()
    wait_for_app(page_a)
    page_a.locator(".st-key-data_delete_confirm button").click()
    page_a.get_by_text("Deleted the dataset visitor_a.").wait_for(timeout=30_000)
    assert not imported.exists("visitor_a") and imported.exists("operators")


def _cli(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120, env=os.environ)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("dashboard_env", ["private"], indirect=True)
def test_a_share_link_opens_its_run_read_only_in_a_fresh_browser_until_revoked_or_expired(dashboard, browser_page):
    store = _store()
    shared = fake_run(store, "finished", epochs_done=4, name="shared run")
    fake_run(store, "finished", epochs_done=2, name="private run")
    printed = _cli("share", "run", str(shared), "--url", dashboard)
    url = printed.splitlines()[0]
    assert url.startswith(f"{dashboard}/?share=") and "read-only, until" in printed
    token_id = re.search(r"share revoke (\w+)", printed).group(1)

    page = browser_page
    page.set_viewport_size(VIEWPORT)
    _open(page, dashboard, "Conv3D Lab")
    page.get_by_text("This lab is private").wait_for()
    assert "private run" not in page.locator("body").inner_text()

    fresh = page.context.browser.new_context(viewport=VIEWPORT)
    try:
        viewer = fresh.new_page()
        viewer.set_default_timeout(30_000)
        _open(viewer, url, f"Run #{shared}")
        viewer.get_by_text("A read-only view shared with you").wait_for()
        viewer.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        text = viewer.locator("body").inner_text()
        assert "This lab is private" not in text and "private run" not in text
        assert viewer.locator("[data-testid='stSidebarNav']").count() == 0  # no menu to the rest of the lab
        assert viewer.locator(".st-key-access_password").count() == 0
        assert viewer.locator("[data-testid='stException']").count() == 0
        assert viewer.get_by_role("button", name=re.compile("Delete|Save|Archive|Stop|Resume")).count() == 0
        _screenshot(viewer, "link-opens-run")
        # The same browser asking for another page of the lab gets the private lab's gate, not the page.
        _open(viewer, f"{dashboard}/runs", "Conv3D Lab")
        viewer.get_by_text("This lab is private").wait_for()

        _cli("share", "revoke", token_id)
        viewer.goto(url)
        viewer.get_by_text("This share link was revoked").wait_for(timeout=60_000)
        wait_for_app(viewer)
        assert f"Run #{shared}" not in viewer.locator("body").inner_text()
        _screenshot(viewer, "link-revoked")

        expired, _ = share.mint("run", [shared], store, days=1, now=1_000_000)
        viewer.goto(share.link(expired, dashboard))
        viewer.get_by_text("This share link expired on 1970-01-").wait_for(timeout=60_000)
        wait_for_app(viewer)
        assert f"Run #{shared}" not in viewer.locator("body").inner_text()
    finally:
        fresh.close()
