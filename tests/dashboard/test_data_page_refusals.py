"""The Data page shows the same refusals as ``python -m engine import`` (issue 21), as AppTest drives it.

Each source is refused by the CLI (exit 2, one sentence); previewed from a server folder on the
page, the same sentence appears in the red box, and nothing is pending. Files a preview skips
show the same reason the CLI prints.
"""

from __future__ import annotations

import shutil

import numpy as np

from tests.cli_in_process import run_cli
from tests.dashboard.test_data_page import data_page, errors, no_exceptions, plain, scans  # noqa: F401 (fixtures)
from tests.datasets import hostile
from tests.datasets.test_import_correctness import ramp, write_slices


def _cli_sentence(capsys, source) -> str:
    code, out, err = run_cli(capsys, "import", str(source), "--name", "refused", "--dry-run")
    assert code == 2 and "Traceback" not in err, (out, err)
    return err.strip().splitlines()[-1][len("error: "):]


def _page_preview(data_page, folder):  # noqa: F811 (the fixture, imported above)
    at = data_page(browse=None)
    at.radio(key="data_source_kind").set_value("Folder on the server").run()
    at.text_input(key="data_folder").input(str(folder)).run()
    at.button(key="data_preview").click().run()
    no_exceptions(at)
    return at


def _sources(root):
    """A patient-folder tree, a zip-bomb .npz, a 2D colour MedMNIST .npz, and point clouds in HDF5."""
    for patient in ("patient01", "patient02", "patient03"):
        write_slices(root / "tumour" / "tumour" / patient, ramp(4), patient=patient)
    (root / "bomb").mkdir()
    hostile.npz_bomb(root / "bomb" / "bomb.npz", zero_bytes=512 * 1024**2)
    (root / "path").mkdir()
    rng = np.random.default_rng(0)
    np.savez(root / "path" / "pathmnist.npz", train_images=rng.integers(0, 255, (4, 28, 28, 3), dtype=np.uint8),
             train_labels=np.arange(4).reshape(-1, 1) % 2)
    import h5py

    (root / "clouds").mkdir()
    with h5py.File(root / "clouds" / "train_point_clouds.h5", "w") as handle:
        for index in range(5):
            handle.create_group(str(index))["points"] = rng.random((10, 3))
    return {"patients": root / "tumour", "bomb": root / "bomb", "2d": root / "path", "clouds": root / "clouds"}


def test_the_page_refuses_with_the_cli_sentence(data_page, scans, capsys):  # noqa: F811
    at = data_page(browse=None)
    at.radio(key="data_source_kind").set_value("Folder on the server").run()
    for case, source in _sources(scans).items():
        sentence = _cli_sentence(capsys, source)
        at.text_input(key="data_folder").input(str(source)).run()
        at.button(key="data_preview").click().run()
        no_exceptions(at)
        assert errors(at) == [plain("No preview: " + sentence)], case
        assert "data_pending" not in at.session_state


def test_skipped_2d_images_show_the_cli_reason_and_import_stays_off(data_page, scans, capsys):  # noqa: F811
    from pydicom.data import get_testdata_file

    root = scans / "xray"
    for label in ("a", "b"):
        for patient in ("p1", "p2"):
            (root / label / patient).mkdir(parents=True)
            shutil.copy(get_testdata_file("CT_small.dcm"), root / label / patient / "image.dcm")
    code, out, err = run_cli(capsys, "import", str(root), "--name", "xray", "--dry-run")
    assert code == 0 and "a/p1: is a single 2D image (128x128), not a volume" in out
    at = _page_preview(data_page, root)
    assert not at.error and at.button(key="data_import").disabled
    skipped = "\n".join(code_block.value for code_block in at.code)
    for line in out.splitlines():
        if line.startswith("  a/") or line.startswith("  b/"):
            assert line.strip() in skipped
    assert "Nothing to import" in plain(at.warning[0].value)
