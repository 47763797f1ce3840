"""The CLI never shows a traceback: random argument lists and config files, every failure one sentence.

Hypothesis draws a command, a mix of its own options (with values of the right
kind, wrong kind, out of range, NaN, huge) and junk tokens, and sometimes a
``--config`` file of random bytes, random JSON or a valid config with a few
fields replaced by random JSON. ``engine.cli.main`` runs in this process, with
training, worker processes, the model probe and Keras model building replaced by fakes, so a random
*valid* configuration never trains or starts anything. Every call must exit
0, 2 (exactly one ``error: ...`` line on stderr) or 1 (only a run that
failed, or ``doctor`` finding a problem), and print no traceback.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from engine.runs import RunStatus
from tests.cli_in_process import run_cli

EXAMPLES = 200
BASE_CONFIG = {
    "name": "fuzz",
    "data": {"dataset": "shapes3d", "options": {"num_samples": 32, "size": 12}},
    "model": {"architecture": "tutorial3d", "width_multiplier": 0.25},
    "training": {"epochs": 1, "batch_size": 8},
}

# What a user might type as a value (argv cannot hold NUL; undecodable bytes arrive as surrogate escapes).
_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)
_ints = st.one_of(st.integers(-3, 40), st.sampled_from([0, -1, 4096, 100_000, 2**31, 2**63, 10**21])).map(str)
_floats = st.one_of(
    st.floats(-10, 10).map(repr), st.sampled_from(["nan", "inf", "-inf", "1e400", "-0.0", "0", "1", "1e-12"])
)
_words = st.sampled_from([
    "shapes3d", "digits3d", "phantom_lesions", "tutorial3d", "vgg3d", "resnet3d", "kerasio3d", "compact3d",
    "adam", "sgd", "cosine", "plateau", "focal", "balanced", "val_auc", "same", "valid", "queued", "finished",
    "num_samples=16", "size=12", "size=-4", "size", "num_samples=1e9", "junk=1", "=", "",
])
_value = st.one_of(_ints, _floats, _words, _text)
_run_ids = st.one_of(st.integers(-2, 5).map(str), st.sampled_from(["999999999999999999999", "x", "1.5"]))

# command -> {option: value strategy (None: a flag without a value)}
_CONFIG_OPTIONS = {
    "--dataset": _words, "--option": _words, "--arch": _words, "--width": _floats, "--epochs": _ints,
    "--batch-size": _ints, "--lr": _floats, "--optimizer": _words, "--schedule": _words, "--dropout": _floats,
    "--batchnorm": None, "--no-batchnorm": None, "--bn-momentum": _floats, "--l2": _floats, "--padding": _words,
    "--loss": _words, "--class-weight": _words, "--augment": None, "--early-stopping": None, "--monitor": _words,
    "--val-fraction": _floats, "--test-fraction": _floats, "--seed": _ints, "--name": _text, "--json": None,
    "--force": None,
}
_SHAPE = st.lists(st.one_of(st.integers(-1, 12).map(str), st.sampled_from(["100000", "x", "2000"])),
                  min_size=3, max_size=5)
COMMANDS = {
    "datasets": {"list": None, "delete": _text, "--json": None},
    "archs": {"--input-shape": _SHAPE, "--classes": _ints, "--json": None},
    "describe": {"--input-shape": _SHAPE, "--classes": _ints, "--batch-size": _ints,
                 "--model-json": st.one_of(_text, st.just('{"architecture": "vgg3d", "width_multiplier": 0.1}'),
                                           st.just('{"architecture": "resnet3d", "padding": "valid"}'))},
    "train": _CONFIG_OPTIONS,
    "launch": _CONFIG_OPTIONS,
    "runs": {"--json": None, "--status": _words},
    "show": {"": _run_ids, "--json": None},
    "stop": {"": _run_ids},
    "resume": {"": _run_ids},
    "reconcile": {},
    "evaluate": {"": _run_ids, "--ensemble": _text, "--epoch": _ints, "--best": None, "--split": _words, "--threshold": _floats,
                 "--json": None},
    "import": {"": _text, "--name": _text, "--format": _words, "--shape": _SHAPE, "--dry-run": None},
    "doctor": {"--store": None, "--json": None},
    "predict": {"": _run_ids, "--ensemble": _text, "--tta": _ints, "--saliency": None, "--json": None},
    "export": {"": _run_ids, "--format": _words, "--json": None},
    "report": {"": _run_ids, "--json": None},
}


def _random_json():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(), _text)
    return st.recursive(
        scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
        max_leaves=8,
    )


@st.composite
def config_files(draw) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "mutated", "mutated", "valid"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "json":
        return json.dumps(draw(_random_json())).encode()
    config = json.loads(json.dumps(BASE_CONFIG))
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 3))):
            section = draw(st.sampled_from(["data", "model", "training", "name"]))
            if section == "name":
                config["name"] = draw(_random_json())
                continue
            field = draw(st.sampled_from(
                {"data": ["dataset", "options", "val_fraction", "test_fraction"],
                 "model": ["architecture", "width_multiplier", "dropout_rate", "padding", "batchnorm", "l2"],
                 "training": ["epochs", "batch_size", "learning_rate", "optimizer", "schedule", "seed", "loss"]}[section]
            ))
            config[section][field] = draw(st.one_of(_random_json(), st.sampled_from([0, -1, 1e308, 10**30, "same"])))
    return json.dumps(config, allow_nan=True).encode()


@st.composite
def argument_lists(draw) -> tuple[list[str], bytes | None]:
    if draw(st.integers(0, 19)) == 0:  # sometimes no known command at all
        return draw(st.lists(_value, max_size=3)), None
    command = draw(st.sampled_from(sorted(COMMANDS)))
    options = COMMANDS[command]
    argv = [command]
    for _ in range(draw(st.integers(0, 4))):
        if options and draw(st.integers(0, 5)):
            flag = draw(st.sampled_from(sorted(options)))
            values = options[flag]
            if flag:
                argv.append(flag)
            if values is not None:
                value = draw(values)
                argv.extend(value if isinstance(value, list) else [value])
        else:
            argv.append(draw(_value))
    config = None
    if command in ("train", "launch") and draw(st.booleans()):
        config = draw(config_files())
    return argv, config


def _fake_execute_run(store, run_id, *, verbose=0, callbacks=()):
    run = store.get_run(run_id)
    store.transition(run_id, RunStatus.FINISHED, from_statuses=[RunStatus.RUNNING], finished_at=time.time(),
                     epochs_done=run.epochs_total)
    return {"run_id": run_id, "status": RunStatus.FINISHED.value, "epochs_done": run.epochs_total,
            "best": {"monitor": run.monitor, "value": None, "epoch": None},
            "test": {"accuracy": None, "loss": None, "auc": None}, "error": None}


def _no_process(*args, **kwargs):
    raise OSError("the property test starts no processes")


@pytest.fixture
def quiet_lab(lab_home, monkeypatch):
    """No training, no worker or helper processes, no model probe subprocess."""
    import engine.training
    from engine import probe
    from engine.jobs import processes
    from engine.models import summary

    monkeypatch.setenv("CONV3D_LAB_STANDBY", "0")
    monkeypatch.setattr(engine.training, "execute_run", _fake_execute_run)
    monkeypatch.setattr(processes, "spawn_detached", _no_process)

    def fake_describe(model_config, input_shape, num_classes, batch_size=32):
        return {"params": 1000, "estimated_training_bytes": 10**6, "activation_bytes_per_sample": 1000,
                "layers": []}

    monkeypatch.setattr(probe, "describe_model", fake_describe)
    # Building Keras models (archs builds five) would take most of the time; everything up to the
    # build (argument parsing, check_input) is the real code. tests/models builds the real ones.
    monkeypatch.setattr(summary, "describe", lambda arch, shape, classes, model_config=None, batch_size=32:
                        {"architecture": arch, "params": 1000, **fake_describe(None, shape, classes)})
    return lab_home


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    return run_cli(capsys, *argv)


def test_random_command_lines_never_show_a_traceback(quiet_lab, tmp_path, capsys):
    counter = itertools.count()
    seen: dict[int, int] = {}
    started = time.perf_counter()

    @seed(20240607)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(argument_lists())
    def check(example):
        argv, config = example
        argv = list(argv)
        if config is not None:
            path = tmp_path / f"config-{next(counter)}.json"
            path.write_bytes(config)
            argv += ["--config", str(path)]
        code, out, err = _run(argv, capsys)
        seen[code] = seen.get(code, 0) + 1
        assert "Traceback" not in out + err, (argv, err)
        assert code in (0, 1, 2), (argv, code, err)
        if code == 2:
            assert err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), (argv, err)
        if code == 1:
            assert argv[0] in ("train", "doctor"), (argv, out, err)

    check()
    elapsed = time.perf_counter() - started
    print(f"{sum(seen.values())} command lines in {elapsed:.1f} s; exit codes {seen}")
    assert seen.get(2, 0) > 20 and seen.get(0, 0) > 5, seen
