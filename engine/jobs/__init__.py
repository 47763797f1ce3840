"""Background runs: launch, a queue with GPU slots, stop, crash recovery and resume.

Training never runs in the dashboard's (or a CLI's) process. ``launch``
records a run as ``queued`` and ``schedule`` starts a detached worker
(``python -m engine worker RUN_ID``, its own session, output in
``runs/<id>/worker.log``) for each queued run that a free slot can take: one
slot per GPU (pinned with CUDA_VISIBLE_DEVICES), one on a CPU-only machine,
``CONV3D_LAB_SLOTS`` to override. A worker that ends schedules the next queued
run itself. All state is in the store, so any process can stop, reconcile or
resume any run.

``ensure_standby`` keeps a warm standby worker (TensorFlow already imported)
waiting on the first slot, which claims the next queued run itself
(engine/jobs/standby.py); ``CONV3D_LAB_STANDBY=0`` turns that off.

Nothing here imports TensorFlow; only the worker does, after it has started.
The worker (``engine.jobs.worker``) is not imported by the package: it sits on
top of the queue and the sweeps (it tells a sweep when its run ends), and the
sweeps queue their trials through this package.
"""

from engine.jobs.control import (
    DEFAULT_STOP_GRACE_S,
    STALE_HEARTBEAT_S,
    escalate_stop,
    heartbeat_age,
    launch,
    launch_group,
    log_tail,
    reconcile,
    resume,
    schedule,
    silent_runs,
    stale_heartbeat_s,
    stop,
)
from engine.machine.devices import SLOTS_ENV, slots
from engine.machine.memory import device_memory
from engine.jobs.standby import ensure_standby

__all__ = [
    "device_memory",
    "DEFAULT_STOP_GRACE_S",
    "SLOTS_ENV",
    "STALE_HEARTBEAT_S",
    "ensure_standby",
    "escalate_stop",
    "heartbeat_age",
    "launch",
    "launch_group",
    "log_tail",
    "reconcile",
    "resume",
    "schedule",
    "silent_runs",
    "slots",
    "stale_heartbeat_s",
    "stop",
]
