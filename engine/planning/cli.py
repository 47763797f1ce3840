"""``python -m engine plan DATASET [--option KEY=VALUE] [--no-lr-test] [--json] [--save FILE]``: an automatic plan."""

from __future__ import annotations

import argparse
import json

from engine import argtypes
from engine.errors import ConfigError


def add_parser(sub) -> None:
    from engine.planning import LR_TEST_STEPS

    p = sub.add_parser("plan", help="an automatic training plan from the dataset's fingerprint and this machine: "
                                    "a complete config, each choice with its reason")
    p.add_argument("dataset", help="a built-in or imported dataset (see `datasets`)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of a built-in dataset, repeatable (e.g. num_samples=200)")
    p.add_argument("--no-lr-test", dest="lr_test", action="store_false",
                   help="skip the learning-rate range test (fast; the rate is then Adam's usual 1e-3)")
    p.add_argument("--lr-steps", type=int, default=LR_TEST_STEPS, help="batches of the range test at most")
    p.add_argument("--seed", type=int, default=0, help="the planned run's seed (also the range test's)")
    p.add_argument("--save", metavar="FILE.json", help="write the planned RunConfig here (for `train --config`)")
    p.add_argument("--json", action="store_true", help="the plan as one JSON object: config, choices, fingerprints")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args: argparse.Namespace) -> int:
    from engine import planning

    if args.lr_steps < 10:
        raise ConfigError([f"--lr-steps is {args.lr_steps}; the range test needs at least 10 batches."])
    plan = planning.make_plan(args.dataset, argtypes.dataset_options(args.option), lr_test=args.lr_test, seed=args.seed,
                              lr_steps=args.lr_steps)
    if args.save:
        try:
            with open(args.save, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(plan.config.to_dict(), indent=1))
        except OSError as e:
            raise ConfigError([f"Cannot write the config to {args.save!r} ({e.strerror}); check the path."]) from e
    if args.json:
        print(json.dumps(plan.to_dict(), default=str))
        return 0
    data = plan.dataset
    print(f"plan for {data.dataset}: {data.num_samples} samples, {data.num_classes} classes, volumes "
          f"{'x'.join(map(str, data.volume_shape))}, modality {data.modality_source}; on {plan.machine.device}")
    for choice in plan.choices:
        value = json.dumps(choice.value) if not isinstance(choice.value, str) else choice.value
        print(f"  {choice.field:<28} {value:<14} {choice.reason}")
    for note in plan.notes:
        print(f"note: {note}")
    if args.save:
        print(f"config written to {args.save}: `python -m engine launch --config {args.save}` starts it")
    return 0
