"""The real dashboard in headless Chromium: upload a zip of scans on the Data page, preview, import,
browse the new dataset, then find it in the Train page's picker (same server, no restart).

Saves test-artifacts/data-preview.png and data-browse.png.
"""

from __future__ import annotations

import re
import time
import zipfile

import numpy as np
import pytest

from tests.e2e.conftest import ARTIFACTS, wait_for_app

pytestmark = pytest.mark.e2e

# Two classes of 16^3 NIfTI volumes, 12 each: a bright ball or a bright cube in noise.
EDGE = 16
PER_CLASS = 12


def _volume(kind: str, rng: np.random.Generator) -> np.ndarray:
    z, y, x = np.mgrid[0:EDGE, 0:EDGE, 0:EDGE] - (EDGE - 1) / 2 + rng.uniform(-1.5, 1.5, 3)[:, None, None, None]
    radius = rng.uniform(4, 6)
    if kind == "ball":
        inside = x**2 + y**2 + z**2 <= radius**2
    else:
        inside = np.maximum(np.maximum(abs(x), abs(y)), abs(z)) <= radius * 0.8
    return (inside * 1.0 + rng.normal(0, 0.1, inside.shape)).astype(np.float32)


@pytest.fixture
def scans_zip(tmp_path, monkeypatch):
    """A zip with one folder per class (ball, cube) of NIfTI files and one broken file; no standby worker."""
    import nibabel

    monkeypatch.setenv("CONV3D_LAB_STANDBY", "0")  # this test trains nothing: no TensorFlow process
    rng = np.random.default_rng(0)
    path = tmp_path / "phantom_scans *v2*.zip"  # Markdown in a file name must show literally
    with zipfile.ZipFile(path, "w") as archive:
        for kind in ("ball", "cube"):
            for index in range(PER_CLASS):
                scan = tmp_path / f"{kind}{index}.nii.gz"
                nibabel.save(nibabel.Nifti1Image(_volume(kind, rng), np.diag([1.5, 1.0, 1.0, 1.0])), scan)
                archive.write(scan, f"phantom scans/{kind}/case{index:02d}.nii.gz")
        archive.writestr("phantom scans/cube/broken.nii.gz", b"this is not a NIfTI file")
    return path


def _screenshot(page, name: str) -> None:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def _heatmaps_with_data(page, key: str) -> int:
    return page.evaluate(
        """key => {
          const plot = document.querySelector(`.st-key-${key} .js-plotly-plot`);
          if (!plot || !plot.data) return 0;
          return plot.data.filter(t => t.type === 'heatmap' && t.z && (t.z.length || t.z.bdata)).length;
        }""",
        key,
    )


def test_upload_preview_import_browse_then_train_lists_it(scans_zip, dashboard, browser_page, lab_home):
    from engine import paths

    page = browser_page
    page.goto(f"{dashboard}/data")
    page.get_by_role("heading", name="Data", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)

    page.locator(".st-key-data_upload input[type='file']").set_input_files(str(scans_zip))
    page.locator("[data-testid='stFileChip']").wait_for()
    wait_for_app(page)
    started = time.perf_counter()
    page.locator(".st-key-data_preview button").click()
    page.get_by_role("heading", name="Preview", exact=True).wait_for(timeout=60_000)
    wait_for_app(page)
    print(f"\npreview of the uploaded zip (24 NIfTI files of 16^3 + 1 broken) shown after "
          f"{time.perf_counter() - started:.2f} s")
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    page.get_by_text("Will be skipped (1)").wait_for()
    page.get_by_text("Source: phantom_scans *v2*.zip").wait_for()
    page.get_by_text("cube/broken.nii.gz: is not a readable NIfTI file").wait_for()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stDataFrame] canvas').length >= 3")
    page.wait_for_timeout(1000)  # the tables draw into a canvas after they are mounted
    _screenshot(page, "data-preview")

    name_input = page.locator(".st-key-data_name input")
    assert name_input.input_value() == "phantom_scans-v2"
    name_input.fill("e2e_phantoms")
    name_input.press("Enter")
    wait_for_app(page)
    started = time.perf_counter()
    page.locator(".st-key-data_import button").click()
    page.get_by_text(re.compile(r"Imported e2e_phantoms: 24 samples, 2 classes, 1 skipped")).wait_for(timeout=60_000)
    wait_for_app(page)
    print(f"import and browse page shown after {time.perf_counter() - started:.2f} s")
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    leftovers = [entry.name for entry in paths.imports_dir().iterdir() if entry.name.startswith(".")]
    assert leftovers == [], f"upload folders left behind: {leftovers}"

    page.get_by_text("Imported from phantom_scans *v2* (nifti): 24 samples, 2 classes.").wait_for()
    page.get_by_text("Source: upload: phantom_scans *v2*").wait_for()
    page.locator(".st-key-data_slice_grid .js-plotly-plot").wait_for()
    page.locator(".st-key-data_slices .js-plotly-plot").wait_for()
    page.locator(".st-key-data_histogram .js-plotly-plot").wait_for()
    assert _heatmaps_with_data(page, "data_slice_grid") == 12  # 6 samples of each of the 2 classes
    assert _heatmaps_with_data(page, "data_slices") == 3  # axial, coronal, sagittal
    page.locator(".st-key-data_3d label").click()
    page.locator(".st-key-data_volume .js-plotly-plot").wait_for(timeout=30_000)
    wait_for_app(page)
    # Streamlit scrolls inside its main block, so a taller window is what gets the whole browser in the picture.
    page.set_viewport_size({"width": 1400, "height": 2700})
    page.get_by_role("heading", name="Browse", exact=True).scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    _screenshot(page, "data-browse")
    page.set_viewport_size({"width": 1400, "height": 1700})

    # Train, in the same browser session and server: the new dataset is in the picker.
    page.get_by_role("link", name="Train").click()
    page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=60_000)
    # No wait for the whole run: the architecture summary below starts TensorFlow in a helper process.
    started = time.perf_counter()
    page.locator(".st-key-train_dataset input[role='combobox']").click()
    page.get_by_role("option", name=re.compile("e2e_phantoms")).click()
    page.get_by_text("Imported from phantom_scans *v2* (nifti): 24 samples, 2 classes.").wait_for(timeout=60_000)
    page.locator("[data-testid='stMetricValue']", has_text=re.compile(r"^24$")).first.wait_for(timeout=60_000)
    print(f"Train page lists e2e_phantoms and previews it {time.perf_counter() - started:.2f} s after the click")
