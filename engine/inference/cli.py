"""``python -m engine predict|export|report``: use a finished run outside the lab's own splits.

engine/cli.py wires them in with ``add_parsers(sub)``. TensorFlow is imported
only when ``predict`` or ``export`` runs; ``report`` reads the store only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine import argtypes
from engine.errors import LabError

FORMATS = ("keras", "savedmodel", "onnx")


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="predict new scans with a finished run: `predict RUN PATH...` or `predict --ensemble GROUP PATH...`"
    )
    p.add_argument("items", nargs="+", metavar="RUN PATH",
                   help="the run id, then DICOM series folders, NIfTI files, zips or HDF5 / NPZ files of volumes "
                        "(with --ensemble: only the paths)")
    p.add_argument("--ensemble", metavar="GROUP", help="average the finished runs of a fold / seed group instead")
    p.add_argument("--tta", type=argtypes.positive_int, default=1, metavar="N",
                   help="test-time augmentation: mean and spread over N views the run's augmentation allows")
    p.add_argument("--saliency", action="store_true", help="a HiResCAM map per scan for its predicted class")
    p.add_argument("--arrays", metavar="FILE.npz", help="also write the preprocessed volumes (and maps) to this file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser("export", help="export a run's model (keras, savedmodel, onnx) with preprocessing.json")
    p.add_argument("run", type=argtypes.run_id, metavar="RUN")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--out", metavar="PATH", help="a new folder, or a .zip file (default: runs/<id>/exports/)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("report", help="one self-contained HTML report (model card) of a finished run")
    p.add_argument("run", type=argtypes.run_id, metavar="RUN")
    p.add_argument("--out", metavar="FILE.html", help="default: runs/<id>/report.html")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report)


def _run_and_paths(args) -> tuple[int | None, list[str]]:
    if args.ensemble is not None:
        return None, list(args.items)
    if len(args.items) < 2:
        raise LabError("Give the run id and at least one scan: predict RUN PATH... (or --ensemble GROUP PATH...).")
    try:
        run_id = argtypes.run_id(args.items[0])
    except argparse.ArgumentTypeError as e:
        raise LabError(f"{e}; give the run id first: predict RUN PATH...") from None
    return run_id, list(args.items[1:])


def cmd_predict(args) -> int:
    import numpy as np

    from engine.inference import predict
    from engine.store import open_store

    run_id, sources = _run_and_paths(args)
    report, volumes = predict.predict(open_store(), sources, run_id=run_id, group=args.ensemble, tta=args.tta,
                                      saliency=args.saliency)
    if args.arrays:
        arrays = {"volumes": volumes, "paths": np.asarray([case["path"] for case in report["cases"]])}
        if args.saliency:
            arrays["saliency"] = np.asarray([case["saliency"]["map"] for case in report["cases"]], dtype=np.float32)
        np.savez_compressed(args.arrays, **arrays)
    print(json.dumps(report) if args.json else predict.format_text(report))
    return 0


def cmd_export(args) -> int:
    from engine.inference import export
    from engine.store import open_store

    path = export.export_run(open_store(), args.run, args.format, args.out)
    print(json.dumps({"run_id": args.run, "format": args.format, "path": str(path)}) if args.json
          else f"run {args.run} exported as {args.format} to {path}")
    return 0


def cmd_report(args) -> int:
    from engine.evaluation import model_card
    from engine.store import open_store

    path = model_card.write_report(open_store(), args.run, Path(args.out) if args.out else None)
    print(json.dumps({"run_id": args.run, "path": str(path)}) if args.json else f"report of run {args.run}: {path}")
    return 0
