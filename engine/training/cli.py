"""The run configuration on the command line, and the training package's own commands.

``add_config_options`` and ``config_from_args`` are the one place where the command-line flags become a
validated ``RunConfig``; every command that takes a run configuration (``train`` and ``launch`` in
engine/jobs/cli.py, ``lr-find`` and ``augment-preview`` here) adds them from this module.
``lr-find`` runs a learning-rate range test; ``augment-preview`` shows the first volumes of epoch 1 before
and after augmentation. Nothing here imports jobs or sweeps (tests/architecture checks the training package).
"""

from __future__ import annotations

import argparse
import json

from engine import argtypes
from engine.config import AUGMENT_KNOBS, AUGMENTATIONS, OPTIMIZERS, PRECISIONS, XLA_MODES, RunConfig
from engine.errors import ConfigError


def add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run configuration (override --config)")
    group.add_argument("--config", metavar="FILE.json", help="a RunConfig JSON file (`show RUN --json` prints one)")
    group.add_argument("--dataset", help="dataset name (see `datasets`)")
    group.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a dataset knob, repeatable")
    group.add_argument("--arch", help="architecture preset (see `archs`)")
    group.add_argument("--width", type=float, help="width multiplier of the architecture")
    group.add_argument("--epochs", type=int)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--lr", type=float, help="learning rate")
    group.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)}")
    group.add_argument("--schedule", help="constant, exponential, cosine or plateau")
    group.add_argument("--dropout", type=float, help="dropout rate (default: the preset's)")
    group.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--bn-momentum", type=float, help="BatchNorm momentum (Keras default 0.99; 0.9 adapts faster)")
    group.add_argument("--l2", type=float)
    group.add_argument("--padding", help="convolution padding: valid (the references) or same (fits small volumes)")
    group.add_argument("--loss", help="crossentropy or focal")
    group.add_argument("--class-weight", help="none or balanced")
    group.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--augmentations", type=lambda text: [a.strip() for a in text.split(",") if a.strip()],
                       metavar="A,B,...", help=f"which augmentations (with --augment): {', '.join(AUGMENTATIONS)}")
    group.add_argument("--augment-knob", action="append", default=[], metavar="KNOB=VALUE",
                       help="an augmentation's probability or strength, repeatable, e.g. rotate_probability=0.5 "
                            "rotate_degrees=15 (docs/augmentation.md lists them)")
    group.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--monitor", help="val_loss, val_accuracy or val_auc")
    group.add_argument("--val-fraction", type=float)
    group.add_argument("--test-fraction", type=float)
    group.add_argument("--positive-class", metavar="CLASS",
                       help="two-class datasets: the class sensitivity and the threshold are about (default: the dataset's)")
    group.add_argument("--seed", type=int)
    group.add_argument("--precision", choices=PRECISIONS,
                       help="auto (default: bfloat16 on CPUs with it, float16 on tensor-core GPUs), float32, "
                            "mixed_bfloat16 or mixed_float16")
    group.add_argument("--xla", choices=XLA_MODES, help="XLA compilation: auto (where measured faster), on or off")
    group.add_argument("--folds", type=int, metavar="K",
                       help="k-fold cross-validation: one run per fold, linked as a group (test split held out once)")
    group.add_argument("--init-from", metavar="RUN|FILE",
                       help="start from a run's weights (run:12) or a .keras / .h5 weights file (docs/transfer.md)")
    group.add_argument("--freeze-blocks", type=int, metavar="K", help="freeze the first K blocks (needs --init-from)")
    group.add_argument("--backbone-lr-scale", type=float, metavar="X",
                       help="the backbone's learning rate as a fraction of --lr (needs --init-from)")
    group.add_argument("--pretext", help="rotation: self-supervised pretraining, labels unused; none: classify")
    group.add_argument("--name", help="a name for the run")


def add_launch_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``train`` and ``launch``: the run configuration, seeds, --json and --force."""
    add_config_options(parser)
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="repeat over N seeds (seed, seed+1, ...) as one group")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--force", action="store_true",
                        help="skip the memory check (a run whose estimate exceeds the device memory)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run config from --config (if any) with the command-line overrides applied, validated."""
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                config = RunConfig.from_json(handle.read())
        except OSError as e:
            raise ConfigError([f"Cannot read the config file {args.config!r} ({e.strerror}); check the path."]) from e
        except UnicodeDecodeError as e:
            raise ConfigError([
                f"The config file {args.config!r} is not UTF-8 text (byte {e.start}); "
                "save it as UTF-8 JSON, e.g. from `python -m engine show RUN --json`."
            ]) from e
    else:
        config = RunConfig()
    overrides = {
        ("data", "dataset"): args.dataset,
        ("data", "val_fraction"): args.val_fraction,
        ("data", "test_fraction"): args.test_fraction,
        ("data", "folds"): getattr(args, "folds", None),
        ("data", "positive_class"): getattr(args, "positive_class", None),
        ("model", "architecture"): args.arch,
        ("model", "width_multiplier"): args.width,
        ("model", "dropout_rate"): args.dropout,
        ("model", "batchnorm"): args.batchnorm,
        ("model", "l2"): args.l2,
        ("model", "batchnorm_momentum"): args.bn_momentum,
        ("model", "padding"): args.padding,
        ("training", "epochs"): args.epochs,
        ("training", "batch_size"): args.batch_size,
        ("training", "learning_rate"): args.lr,
        ("training", "optimizer"): args.optimizer,
        ("training", "schedule"): args.schedule,
        ("training", "loss"): args.loss,
        ("training", "class_weight"): args.class_weight,
        ("training", "augment"): args.augment,
        ("training", "augmentations"): getattr(args, "augmentations", None),
        ("training", "early_stopping"): args.early_stopping,
        ("training", "monitor"): args.monitor,
        ("training", "seed"): args.seed,
        ("training", "precision"): getattr(args, "precision", None),
        ("training", "xla"): getattr(args, "xla", None),
        ("training", "init_from"): getattr(args, "init_from", None),
        ("training", "freeze_blocks"): getattr(args, "freeze_blocks", None),
        ("training", "backbone_lr_scale"): getattr(args, "backbone_lr_scale", None),
        ("training", "pretext"): getattr(args, "pretext", None),
    }
    for (section, field_name), value in overrides.items():
        if value is not None:
            setattr(getattr(config, section), field_name, value)
    if args.dataset and not args.config:
        config.data.options = {}
    config.data.options.update(argtypes.dataset_options(args.option))
    for text in getattr(args, "augment_knob", []):
        knob, number = _parse_augment_knob(text)
        setattr(config.training, knob, number)
    if args.name is not None:
        config.name = args.name
    from engine import validation  # loads both registries

    return validation.validate(config)


def _parse_augment_knob(text: str) -> tuple[str, float]:
    names = [name for pair in AUGMENT_KNOBS.values() for name in pair]
    key, _, raw = text.partition("=")
    key = key.strip()
    if key not in names:
        raise ConfigError([f"--augment-knob {text!r}: name one of {', '.join(names)}, e.g. rotate_degrees=15."])
    try:
        return key, float(raw)
    except ValueError:
        raise ConfigError([f"--augment-knob {text!r}: the value must be a number, e.g. {key}=0.5."]) from None


def add_lr_find(sub) -> None:
    from engine.doctor import lr_range

    p = sub.add_parser("lr-find", help="learning-rate range test: an exponential sweep from fresh weights")
    add_config_options(p)
    sweep = p.add_argument_group("the sweep")
    sweep.add_argument("--min-lr", type=float, default=lr_range.DEFAULT_MIN_LR, help="the first rate")
    sweep.add_argument("--max-lr", type=float, default=lr_range.DEFAULT_MAX_LR, help="the last rate (at most)")
    sweep.add_argument("--steps", type=int, default=lr_range.DEFAULT_STEPS, help="batches at most")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lr_find)


def add_augment_preview(sub) -> None:
    p = sub.add_parser("augment-preview", help="the first training volumes of epoch 1 before and after augmentation")
    add_config_options(p)
    p.add_argument("--count", type=argtypes.positive_int, default=4, help="volumes (at most the batch size)")
    p.add_argument("--out", metavar="FILE.npz", help="write their middle axial slices (before, after) here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_augment_preview)


def cmd_lr_find(args) -> int:
    from engine.store import open_store
    from engine.training.lr_find import find_learning_rate

    config = config_from_args(args)
    result = find_learning_rate(open_store(), config, min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps)
    if args.json:
        print(json.dumps(result))
        return 0
    suggestion = result["suggestion"]
    print(f"run {result['run_id']}: {result['steps']} batches of {result['batch_size']}, "
          f"rates {result['learning_rates'][0]:.2g} to {result['learning_rates'][-1]:.2g}")
    print(f"suggested learning rate {suggestion['suggested']:.3g} (steepest descent of the smoothed loss; "
          f"loss minimum at {suggestion['minimum']:.3g}, minimum / 10 = {suggestion['minimum_over_10']:.3g})")
    return 0


def cmd_augment_preview(args) -> int:
    import numpy as np

    from engine.training import augment_preview

    config = config_from_args(args)
    batch = augment_preview.first_batch(config, args.count)
    middle = batch["before"].shape[1] // 2
    slices = {name: batch[name][:, middle, :, :, 0] for name in ("before", "after")}  # middle axial, channel 0
    if args.out:
        np.savez(args.out, **slices)
    rows = [
        {"label": label, **{f"{name}_{stat}": float(getattr(batch[name][i], stat)())
                            for name in ("before", "after") for stat in ("min", "max", "mean", "std")}}
        for i, label in enumerate(batch["labels"])
    ]
    if args.json:
        print(json.dumps({"volumes": rows, "slice": middle, "out": args.out}))
        return 0
    print(f"the first {len(rows)} training volumes of epoch 1 (seed {config.training.seed}), "
          f"augmented with {', '.join(config.training.augmentations)}:")
    for i, row in enumerate(rows):
        print(f"  {i}: {row['label']}: before {row['before_min']:.3g}..{row['before_max']:.3g} "
              f"(mean {row['before_mean']:.3g}, std {row['before_std']:.3g}); after {row['after_min']:.3g}.."
              f"{row['after_max']:.3g} (mean {row['after_mean']:.3g}, std {row['after_std']:.3g})")
    if args.out:
        print(f"middle axial slices (index {middle}) written to {args.out}")
    return 0

