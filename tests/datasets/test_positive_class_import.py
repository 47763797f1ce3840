"""A two-class import: the positive class is guessed in the preview, recorded in the manifest, and changeable."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from engine import datasets, paths
from engine.datasets import imported
from engine.errors import DataError
from tests.datasets import scans


@pytest.fixture
def lesion_scans(tmp_path):
    root = tmp_path / "scans"
    rng = np.random.default_rng(0)
    for class_name in ("lesion", "normal"):
        for index in range(3):
            scans.write_nifti(root / class_name / f"case{index}.nii", rng.random((6, 6, 6)).astype(np.float32))
    return root


def test_the_preview_guesses_and_the_import_records_the_positive_class(lab_home, lesion_scans):
    preview = datasets.preview_import(lesion_scans)
    assert preview.classes == {"lesion": 3, "normal": 3} and preview.positive_class == "lesion"
    result = datasets.import_dataset(lesion_scans, "lesions")
    assert result.positive_class == "lesion"
    assert imported.manifest("lesions")["positive_class"] == "lesion"
    assert datasets.dataset_info("lesions")["positive_class"] == "lesion"
    assert datasets.load_dataset("lesions").positive_class == "lesion"

    modified = os.stat(paths.imports_dir()).st_mtime_ns
    datasets.set_positive_class("lesions", "normal")
    assert datasets.dataset_info("lesions")["positive_class"] == "normal"
    assert os.stat(paths.imports_dir()).st_mtime_ns >= modified  # the dashboard's catalog key moves
    with pytest.raises(DataError, match="choose one of the two classes, 'lesion' or 'normal'"):
        datasets.set_positive_class("lesions", "tumour")
    assert datasets.dataset_info("lesions")["positive_class"] == "normal"


def test_a_chosen_positive_class_is_recorded_and_a_wrong_one_leaves_nothing(lab_home, lesion_scans):
    assert datasets.import_dataset(lesion_scans, "chosen", positive_class="normal").positive_class == "normal"
    assert imported.manifest("chosen")["positive_class"] == "normal"
    with pytest.raises(DataError, match="'tumour'; choose one of the two classes"):
        datasets.import_dataset(lesion_scans, "wrong", positive_class="tumour")
    assert not imported.exists("wrong")
    assert not [name for name in os.listdir(paths.imports_dir()) if name.startswith(".")]


def test_an_import_from_before_the_field_gets_the_guess(lab_home, lesion_scans):
    datasets.import_dataset(lesion_scans, "older")
    path = imported.folder("older") / imported.MANIFEST
    recorded = json.loads(path.read_text())
    del recorded["positive_class"]
    path.write_text(json.dumps(recorded))
    assert datasets.dataset_info("older")["positive_class"] == "lesion"


def test_builtins_name_their_positive_class(lab_home):
    assert datasets.dataset_info("phantom_lesions")["positive_class"] == "lesion"
    assert datasets.dataset_info("digits3d")["positive_class"] is None


def test_the_import_command_shows_and_takes_the_positive_class(lab_home, lesion_scans):
    from tests.datasets.test_import_cli import _cli

    dry = _cli("import", str(lesion_scans), "--name", "lesions", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "positive class (guessed from the names; --positive-class changes it): lesion" in dry.stdout
    done = _cli("import", str(lesion_scans), "--name", "lesions", "--positive-class", "normal")
    assert done.returncode == 0, done.stderr
    assert "positive class: normal" in done.stdout and imported.manifest("lesions")["positive_class"] == "normal"
    wrong = _cli("import", str(lesion_scans), "--name", "other", "--positive-class", "tumour")
    assert wrong.returncode == 2 and "choose one of the two classes" in wrong.stderr + wrong.stdout
    assert "Traceback" not in wrong.stderr
