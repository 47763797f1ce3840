"""One settings source for the hosted demo (engine/settings.py ``demo_settings``): the flag, every cap and the
pinned model come from the same sources with the same precedence, per setting: the dashboard's secrets,
else the environment, else the default."""

from __future__ import annotations

import contextvars
import dataclasses
import threading

import pytest

from engine import settings
from engine.errors import LabError


def test_per_setting_the_secrets_win_then_the_environment_then_the_default():
    environ = {"CONV3D_LAB_DEMO": "0", "CONV3D_LAB_DEMO_MAX_EPOCHS": "9", "CONV3D_LAB_DEMO_MAX_SAMPLES": "100",
               "CONV3D_LAB_DEMO_MODEL": "cv-1a2b3c"}
    secrets = {"demo": True, "demo_max_epochs": 5, "demo_model": "7", "lab_password": "not a demo setting"}
    chosen = settings.demo_settings(secrets, environ)
    assert chosen.enabled and chosen.model == "7"
    assert chosen.caps.max_epochs == 5  # the secret
    assert chosen.caps.max_samples == 100  # no secret: the environment
    assert chosen.caps.max_volume_edge == settings.DemoCaps().max_volume_edge  # neither: the default
    # The flag follows the same rule: an explicit "false" secret wins over CONV3D_LAB_DEMO=1, an empty one does not.
    assert not settings.demo_settings({"demo": False}, {"CONV3D_LAB_DEMO": "1"}).enabled
    assert settings.demo_settings({"demo": ""}, {"CONV3D_LAB_DEMO": "yes"}).enabled
    assert settings.demo_settings({}, {}) == settings.DemoSettings()


def test_every_setting_has_one_secrets_key_named_after_its_variable():
    assert settings.secret_key(settings.DEMO_ENV) == "demo"
    assert settings.secret_key(settings.DEMO_MODEL_ENV) == "demo_model"
    assert settings.secret_key(settings.DEMO_CAP_ENV_PREFIX + "MAX_UPLOAD_BYTES") == "demo_max_upload_bytes"
    caps = settings.demo_settings({"demo_max_width_multiplier": "0.5", "demo_max_training_minutes_per_day": 10},
                                  {}).caps
    assert (caps.max_width_multiplier, caps.max_training_minutes_per_day) == (0.5, 10.0)


def test_a_cap_that_is_not_a_number_is_a_sentence_naming_where_it_was_set():
    with pytest.raises(LabError, match="demo_max_epochs in the secrets is 'many', not a number"):
        settings.demo_settings({"demo_max_epochs": "many"}, {})
    with pytest.raises(LabError, match="CONV3D_LAB_DEMO_MAX_EPOCHS is 'lots', not a number"):
        settings.demo_settings({}, {"CONV3D_LAB_DEMO_MAX_EPOCHS": "lots"})


def test_the_dashboards_secrets_reach_the_engine_calls_of_its_script_run_only(monkeypatch):
    """``dashboard_secrets`` (what ui/access.py hands over) makes the no-argument reads (demo_mode(),
    demo_caps(): the engine's own checks) see the secrets, in that context only: another thread, such as
    the next test or a worker's, reads the environment."""
    monkeypatch.delenv(settings.DEMO_ENV, raising=False)
    monkeypatch.setenv(settings.DEMO_CAP_ENV_PREFIX + "MAX_EPOCHS", "9")

    def script_run():
        settings.dashboard_secrets({"demo": True, "demo_max_epochs": 4})
        return settings.demo_mode(), settings.demo_caps().max_epochs, settings.demo_mode(False)

    assert contextvars.Context().run(script_run) == (True, 4, False)  # an explicit argument still wins
    seen = []
    thread = threading.Thread(target=lambda: seen.append((settings.demo_mode(), settings.demo_caps().max_epochs)))
    thread.start()
    thread.join()
    assert seen == [(False, 9)]
    assert (settings.demo_mode(), settings.demo_caps().max_epochs) == (False, 9)


def test_the_settings_page_lists_every_setting_with_its_key_variable_and_default():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "demo-settings.md").read_text(encoding="utf-8")
    names = [settings.DEMO_ENV, settings.DEMO_MODEL_ENV] + [
        settings.DEMO_CAP_ENV_PREFIX + field.upper() for field in settings.DemoCaps.__dataclass_fields__]
    for name in names:
        assert f"| `{settings.secret_key(name)}` | `{name}` |" in page, name
    for field, value in dataclasses.asdict(settings.DemoCaps()).items():
        assert f"`{settings.DEMO_CAP_ENV_PREFIX}{field.upper()}` | {value} " in page, field
