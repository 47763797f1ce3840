"""``python -m engine archs [--json]`` and ``python -m engine describe --model-json JSON``: the architectures.

``describe`` is also how the dashboard gets a model's layer table without importing TensorFlow itself
(engine/probe.py runs it in a short-lived subprocess).
"""

from __future__ import annotations

import json

from engine import argtypes
from engine.errors import ConfigError, LabError


def add_archs(sub) -> None:
    p = sub.add_parser("archs", help="list the architectures with parameter counts for an input")
    p.add_argument("--json", action="store_true")
    p.add_argument("--input-shape", type=int, nargs=4, default=[16, 16, 16, 1], metavar=("D", "H", "W", "C"))
    p.add_argument("--classes", type=int, default=10)
    p.set_defaults(func=cmd_archs)


def add_describe(sub) -> None:
    p = sub.add_parser("describe", help="one model's layer table, parameters and memory estimate as JSON")
    p.add_argument("--model-json", default='{"architecture": "tutorial3d"}', help="the model section of a RunConfig")
    p.add_argument("--input-shape", type=int, nargs=4, default=[16, 16, 16, 1], metavar=("D", "H", "W", "C"))
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch-size", type=argtypes.positive_int, default=32)
    p.set_defaults(func=cmd_describe)


def cmd_archs(args) -> int:
    from engine import models
    from engine.config import ModelConfig

    input_shape = tuple(args.input_shape)
    rows = []
    for spec in models.arch_catalog():
        try:
            info = models.describe(spec["name"], input_shape, args.classes, ModelConfig(architecture=spec["name"]))
            params, note = info["params"], ""
        except LabError as e:
            params, note = None, str(e)
        rows.append({**spec, "input_shape": list(input_shape), "classes": args.classes, "params": params, "note": note})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for row in rows:
        params = f"{row['params']:>12,}" if row["params"] is not None else f"{'-':>12}"
        print(f"{row['name']:<11} {params} params  {row['description']}" + (f"  [{row['note']}]" if row["note"] else ""))
    return 0


def cmd_describe(args) -> int:
    from engine import models
    from engine.config import ModelConfig

    try:
        raw = json.loads(args.model_json)
        model_config = ModelConfig(**raw)
    except (json.JSONDecodeError, TypeError) as e:
        raise ConfigError([f"--model-json must be a JSON object of model fields ({e})."]) from e
    info = models.describe(
        model_config.architecture, tuple(args.input_shape), args.classes, model_config, batch_size=args.batch_size
    )
    print(json.dumps(info, default=str))
    return 0
