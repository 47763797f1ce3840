"""``python -m engine import`` / ``datasets`` / ``train`` on an imported set, as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile

from tests.datasets import scans
from tests.cli_in_process import cli_result


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return cli_result(*args, timeout=timeout)  # in this process: no interpreter or TensorFlow start-up


def test_import_list_train_and_delete_from_the_command_line(lab_home, tmp_path):
    scans.write_3d_mnist(tmp_path / "full_dataset_vectors.h5", train=60, test=20)
    dry = _cli("import", str(tmp_path / "full_dataset_vectors.h5"), "--name", "mnist3d", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    preview = json.loads(dry.stdout)
    assert preview["layout"] == "3d-mnist" and preview["splits"] == {"train": 60, "test": 20}
    assert not (tmp_path / "data-cache" / "imports").exists() or not os.listdir(tmp_path / "data-cache" / "imports")

    result = _cli("import", str(tmp_path / "full_dataset_vectors.h5"), "--name", "mnist3d", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["name"] == "mnist3d" and summary["samples"] == 80 and summary["skipped"] == {}
    assert summary["classes"] == {str(d): 8 for d in range(10)} and summary["splits"] == {"train": 60, "test": 20}
    assert "[80/80] full_dataset_vectors.h5:X_test[19]" in result.stderr  # progress lines

    listing = _cli("datasets")
    assert listing.returncode == 0 and "mnist3d" in listing.stdout
    assert "Imported from full_dataset_vectors.h5 (hdf5): 80 samples" in listing.stdout

    train = _cli("train", "--dataset", "mnist3d", "--arch", "tutorial3d", "--padding", "same", "--width", "0.25",
                 "--epochs", "1", "--batch-size", "16", "--json")
    assert train.returncode == 0, train.stderr[-2000:]
    run = json.loads(train.stdout.strip().splitlines()[-1])
    assert run["status"] == "finished" and run["epochs_done"] == 1
    shown = json.loads(_cli("show", str(run["run_id"]), "--json").stdout)
    assert shown["split_sizes"]["test"] == 20  # the file's own test split

    again = _cli("import", str(tmp_path / "full_dataset_vectors.h5"), "--name", "mnist3d")
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr
    deleted = _cli("datasets", "delete", "mnist3d")
    assert deleted.returncode == 0 and "mnist3d" not in _cli("datasets").stdout


def test_import_mistakes_get_one_sentence_and_exit_2(lab_home, tmp_path):
    scans.write_medmnist(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.writestr("../../escaped.txt", "x")
    for args, expected in [
        (("import", str(tmp_path / "m.npz"), "--name", "bad name"), "1 to 60 letters, digits"),
        (("import", str(tmp_path / "m.npz"), "--name", "shapes3d"), "is a built-in dataset's"),
        (("import", str(tmp_path / "nowhere"), "--name", "x"), "does not exist"),
        (("import", str(tmp_path / "m.npz"), "--name", "x", "--window", "lungs"), "window is 'lungs'"),
        (("import", str(tmp_path / "evil.zip"), "--name", "x"), "climbs out of the archive"),
        (("datasets", "delete", "nope"), "There is no imported dataset named 'nope'"),
    ]:
        result = _cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    assert not (tmp_path / "escaped.txt").exists()


def test_import_finds_the_labels_csv_in_a_zip_and_says_what_it_chose(lab_home, tmp_path):
    diagnoses = {f"P{index:02d}": ("lesion" if index % 2 else "normal") for index in range(1, 13)}
    scans.write_ct_patients(tmp_path / "study" / "patients", diagnoses)
    (tmp_path / "study" / "patients" / "labels.csv").write_text(
        "Accession,Finding\n" + "".join(f"{p},{label}\n" for p, label in diagnoses.items()))
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted((tmp_path / "study").rglob("*")):
            handle.write(path, path.relative_to(tmp_path / "study").as_posix())
    dry = _cli("import", str(archive), "--name", "study", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "labels: labels.csv (columns: id 'Accession', label 'Finding')" in dry.stdout
    assert "intensities: CT (DICOM Modality CT): window soft_tissue" in dry.stdout
    assert "classes: lesion 6, normal 6" in dry.stdout and "cannot train" not in dry.stdout
    # Read as class folders, the patients would be 12 one-sample classes: refused as patient folders (issue 21),
    # in the dry run and on import alike, exit 2.
    for extra in (("--dry-run",), ()):
        refused = _cli("import", str(archive), "--name", "study", "--labels", "none", *extra)
        assert refused.returncode == 2 and "look like patient or series folders, not classes" in refused.stderr
    assert "Traceback" not in refused.stderr
