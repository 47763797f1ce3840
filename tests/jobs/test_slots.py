"""Slots (engine/machine/devices.py): one per GPU (found with nvidia-smi, never TensorFlow), one on a CPU, CONV3D_LAB_SLOTS to override."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from engine.errors import LabError
from engine.machine import devices as slots_module
from engine.jobs import processes
from engine.machine.devices import cuda_visible_devices, slots


@pytest.fixture
def fake_gpus(tmp_path, monkeypatch):
    """Put an `nvidia-smi` that lists two GPUs first on PATH."""
    script = tmp_path / "bin" / "nvidia-smi"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        "echo 'GPU 0: NVIDIA Fake (UUID: GPU-aaaa)'\n"
        "echo '  MIG 1g.10gb Device 0: (UUID: MIG-bbbb)'\n"
        "echo 'GPU 1: NVIDIA Fake (UUID: GPU-cccc)'\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:{__import__('os').environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    slots_module._nvidia_smi_gpus.cache_clear()
    yield
    slots_module._nvidia_smi_gpus.cache_clear()


@pytest.fixture
def no_gpus(monkeypatch):
    monkeypatch.setattr(slots_module, "_nvidia_smi_gpus", lambda: ())


def test_cpu_machine_has_one_slot_unless_overridden(no_gpus, monkeypatch):
    monkeypatch.delenv("CONV3D_LAB_SLOTS", raising=False)
    assert slots() == ["cpu"]
    monkeypatch.setenv("CONV3D_LAB_SLOTS", "3")
    assert slots() == ["cpu0", "cpu1", "cpu2"]
    assert cuda_visible_devices("cpu1") is None


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_a_bad_override_is_a_sentence(no_gpus, monkeypatch, value):
    monkeypatch.setenv("CONV3D_LAB_SLOTS", value)
    with pytest.raises(LabError, match="CONV3D_LAB_SLOTS .* whole number of at least 1"):
        slots()


def test_one_slot_per_gpu_pinned_with_cuda_visible_devices(fake_gpus, monkeypatch):
    monkeypatch.delenv("CONV3D_LAB_SLOTS", raising=False)
    assert slots() == ["0", "1"]
    monkeypatch.setenv("CONV3D_LAB_SLOTS", "1")
    assert slots() == ["0"]
    monkeypatch.setenv("CONV3D_LAB_SLOTS", "3")  # more slots than GPUs share them
    assert slots() == ["0", "1", "0:1"]
    assert cuda_visible_devices("0:1") == "0"
    assert processes.child_environment("sqlite://", "1")["CUDA_VISIBLE_DEVICES"] == "1"


def test_the_labs_own_cuda_visible_devices_narrows_the_gpus(fake_gpus, monkeypatch):
    monkeypatch.delenv("CONV3D_LAB_SLOTS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert slots() == ["1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert slots() == ["cpu"]


def test_importing_jobs_does_not_import_tensorflow():
    code = "import sys, engine.jobs; engine.jobs.slots(); print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.gpu
@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no nvidia-smi on this machine")
def test_real_gpus_become_slots(monkeypatch):
    monkeypatch.delenv("CONV3D_LAB_SLOTS", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    slots_module._nvidia_smi_gpus.cache_clear()
    names = slots()
    assert names and all(name.isdigit() for name in names)
