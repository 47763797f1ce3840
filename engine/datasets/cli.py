"""``python -m engine datasets [list | delete NAME] [--json]`` and ``python -m engine import PATH --name NAME ...``.

Progress lines go to stderr so that ``--json`` leaves stdout to the one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

# Print a progress line for every sample up to this many, then about every 1%.
PROGRESS_EVERY_SAMPLE_UP_TO = 200


def add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="list the datasets (built-in and imported); `datasets delete NAME`")
    p.add_argument("action", nargs="?", choices=("list", "delete"), default="list")
    p.add_argument("target", nargs="?", metavar="NAME", help="the imported dataset to delete")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)


def cmd_datasets(args) -> int:
    from engine import datasets

    if args.action == "delete":
        return cmd_delete(args)
    catalog = datasets.list_datasets()
    if args.json:
        print(json.dumps(catalog, indent=2, default=str))
        return 0
    for info in catalog:
        shape = "x".join(str(s) for s in info.get("volume_shape", ()))
        print(f"{info['name']:<18} {info.get('num_classes', '?'):>2} classes  {shape:<12} {info['description']}")
    return 0


def add_import(sub) -> None:
    p = sub.add_parser("import", help="import scans (DICOM, NIfTI, HDF5, NPZ; a folder, file or zip) as a dataset")
    p.add_argument("path", help="a folder (one folder per class, or with --labels), an .h5 / .npz file, or a .zip")
    p.add_argument("--name", required=True, help="the dataset's name: letters, digits, '-' and '_', at most 60")
    p.add_argument("--labels", metavar="FILE.csv",
                   help="CSV of id, label and optionally group/patient and split (a path, or a name inside the source); "
                   "default: the one *.csv at the top of the source, if any; 'none': class folders regardless")
    p.add_argument("--format", default="auto", help="auto, dicom, nifti, hdf5 or npz")
    p.add_argument("--shape", type=int, nargs=3, metavar=("D", "H", "W"), help="resample every volume to D x H x W")
    p.add_argument("--window", help="CT window preset in HU: brain, subdural, stroke, bone, soft_tissue, lung, ... "
                   "(default, with no --clip or --normalization: chosen from the data, e.g. soft_tissue for CT)")
    p.add_argument("--clip", type=float, nargs=2, metavar=("LOW", "HIGH"), help="clip each volume to these percentiles")
    p.add_argument("--normalization", help="none, minmax or zscore (per volume); none keeps the values as read "
                   "(default: chosen from the data, e.g. zscore for MR)")
    p.add_argument("--reorient", action=argparse.BooleanOptionalAction, default=True,
                   help="reorder and flip axes to RAS+ (NIfTI, DICOM; on by default: --no-reorient keeps them as "
                        "stored, and scans of several orientations are then refused)")
    p.add_argument("--keep-nan", action="store_true",
                   help="skip volumes holding NaN voxels instead of reading NaN as 0 (the default, with a note)")
    p.add_argument("--channels", default="keep", help="keep, first or mean")
    p.add_argument("--series", metavar="PATTERN", help="DICOM folders with several series: 'largest' or e.g. FLAIR")
    p.add_argument("--volume-index", type=int, help="which volume of a 4D NIfTI image")
    p.add_argument("--x-key", help="HDF5 / NPZ: the array of volumes")
    p.add_argument("--y-key", help="HDF5 / NPZ: the array of labels")
    for role in ("id", "label", "group", "split"):
        p.add_argument(f"--{role}-column", help=f"the labels CSV's {role} column (default: guessed from names and values)")
    p.add_argument("--positive-class", metavar="CLASS",
                   help="two classes: the class sensitivity and the threshold are about (default: guessed from the names)")
    p.add_argument("--replace", action="store_true", help="replace an imported dataset of the same name")
    p.add_argument("--dry-run", action="store_true", help="show what would be imported; write nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import)


def options_from_args(args: argparse.Namespace):
    from engine.datasets import ImportOptions

    return ImportOptions(
        format=args.format, labels_csv=args.labels, id_column=args.id_column, label_column=args.label_column,
        group_column=args.group_column, split_column=args.split_column,
        shape=tuple(args.shape) if args.shape else None, reorient=args.reorient, nan_to_zero=not args.keep_nan,
        window=args.window,
        clip_percentiles=tuple(args.clip) if args.clip else None, normalization=args.normalization,
        channels=args.channels, volume_index=args.volume_index, series=args.series, x_key=args.x_key, y_key=args.y_key,
    ).validate()


def _print_progress(progress) -> None:
    step = 1 if progress.total <= PROGRESS_EVERY_SAMPLE_UP_TO else max(1, progress.total // 100)
    if progress.done % step == 0 or progress.done == progress.total:
        width = len(str(progress.total))
        print(f"[{progress.done:>{width}}/{progress.total}] {progress.path}"
              + (f"  ({progress.skipped} skipped)" if progress.skipped else ""), file=sys.stderr, flush=True)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "-"


def _print_skipped(skipped: dict[str, str], unmatched_rows: list[str], notes: list[str]) -> None:
    if skipped:
        print(f"skipped {len(skipped)}:")
        for path, reason in skipped.items():
            print(f"  {path}: {reason}")
    if unmatched_rows:
        print(f"labels without files ({len(unmatched_rows)}): {', '.join(unmatched_rows)}")
    for note in notes:
        print(f"note: {note}")


def _print_preview(preview) -> None:
    print(f"{preview.format} ({preview.layout}) from {preview.source}")
    if preview.labels_csv:
        roles = ", ".join(f"{role} {column!r}" for role, column in preview.columns.items() if column)
        print(f"labels: {preview.labels_csv} (columns: {roles})")
    print(f"intensities: {preview.intensity}")
    print(f"samples: {preview.samples}; classes: {_counts(preview.classes)}")
    if preview.positive_class is not None:
        print(f"positive class (guessed from the names; --positive-class changes it): {preview.positive_class}")
    print(f"shapes: {_counts(preview.shapes)}")
    if preview.spacings:
        print(f"spacings: {_counts(preview.spacings)}")
    if preview.series:
        print(f"series chosen: {_counts(preview.series)}")
    print(f"predefined splits: {_counts(preview.splits)}; groups: {preview.groups or '-'}")
    _print_skipped(preview.skipped, preview.unmatched_rows, preview.notes)
    for problem in preview.problems:
        print(f"cannot train: {problem}")
    print("dry run: nothing was written.")


def cmd_import(args) -> int:
    from engine import datasets

    options = options_from_args(args)
    if args.dry_run:
        datasets.validate_dataset_name(args.name)
        preview = datasets.preview_import(args.path, options)
        if args.json:
            print(json.dumps(preview.to_dict()))
        else:
            _print_preview(preview)
        return 0
    result = datasets.import_dataset(args.path, args.name, options, replace=args.replace, progress=_print_progress,
                                     check_splits=True, positive_class=args.positive_class)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    shape = "x".join(map(str, result.volume_shape))
    print(f"imported {result.name}: {result.samples} samples of {shape}, classes: {_counts(result.classes)}")
    if result.positive_class is not None:
        print(f"positive class: {result.positive_class}")
    print(f"predefined splits: {_counts(result.splits)}; groups: {result.groups or '-'}; in {result.seconds:.1f} s")
    _print_skipped(result.skipped, result.unmatched_rows, result.notes)
    print(f"train on it: python -m engine train --dataset {result.name}")
    return 0


def cmd_delete(args) -> int:
    from engine import datasets
    from engine.errors import ConfigError

    if not args.target:
        raise ConfigError(["`datasets delete` needs the name of an imported dataset, e.g. `datasets delete scans`."])
    datasets.delete_imported(args.target)
    result: dict[str, Any] = {"deleted": args.target}
    print(json.dumps(result) if args.json else f"deleted {args.target}")
    return 0
