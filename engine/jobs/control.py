"""The queue and the life cycle of background runs: launch, schedule, stop, reconcile, resume.

Everything here is quick and plain Python (no TensorFlow), so the dashboard
can call it from a script run. The slow part, training, happens in worker
processes (engine/jobs/worker.py) that this module starts detached.

State lives only in the store: a run is ``queued`` until a worker slot is
claimed for it (``Store.claim_next_queued``, one atomic transaction, so two
dashboards or CLIs never start the same run twice or exceed the slots), then
``running`` with the worker's pid, host and heartbeat, then
finished / failed / stopped, or ``interrupted`` when ``reconcile`` finds its
worker gone.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import actors, paths, settings, validation
from engine.weights import checkpoints, warm_start
from engine.hosting import demo
from engine.config import RunConfig
from engine.errors import RunStateError
from engine.jobs import admission, executors, liveness, processes, standby
from engine.machine.devices import slots
from engine.runs import ENDED_STATUSES, RESUMABLE_STATUSES, RunRecord, RunStatus
from engine.store import RunStore, artefacts, journal, open_store
from engine.store.heartbeat import file_beat_time
from engine.datasets import splits

log = logging.getLogger(__name__)

# A running run whose worker cannot be checked by pid (another host, or no pid
# recorded yet) is interrupted when its heartbeat is older than this; a live local
# worker this quiet is reported as silent (it may hang: stop it). Workers beat
# every 5 s. CONV3D_LAB_STALE_HEARTBEAT_S overrides it (tests use a few seconds).
STALE_HEARTBEAT_S = 30.0
STALE_HEARTBEAT_ENV = "CONV3D_LAB_STALE_HEARTBEAT_S"
# A warm standby polls the queue every 0.2 s: one that has not claimed a run queued this long
# ago is hung (or suspended), and its slot goes to a cold worker.
STANDBY_CLAIM_GRACE_S = 5.0
# A standby still importing TensorFlow claims as soon as the import is done; it gets this long.
STANDBY_START_GRACE_S = 120.0
# How long a stop waits for the worker to end ``fit`` cleanly before SIGTERM.
DEFAULT_STOP_GRACE_S = 10.0
# After SIGTERM, how long before SIGKILL.
TERMINATE_GRACE_S = 5.0


def launch(
    config: RunConfig | dict[str, Any], *, store: RunStore | None = None, force: bool = False,
    owner: str | None = None, demo_mode: bool | None = None,
) -> int:
    """Validate ``config``, queue it as a new run, start it if a slot is free; returns the run id.

    A config with ``data.folds = k`` (and no ``data.fold``) is a cross-validation:
    k runs are queued, one per fold, under one new group id ("cv-..."); the id of
    the first is returned (every run's record carries the group;
    ``launch_group`` returns them all). A ``ConfigError`` (one problem per bad
    field) propagates and nothing is recorded. So does one for a model and batch
    that cannot fit the device memory by the estimate (engine/jobs/admission.py),
    unless ``force``. ``owner`` (a dashboard session or login) is recorded with
    the run; on a hosted demo (``demo_mode``, default ``$CONV3D_LAB_DEMO``) the
    launch is held to the demo's caps (engine/hosting/demo.py) and a ``DemoLimitError``
    naming the cap propagates, nothing recorded.
    """
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    if splits.is_cross_validation(config):
        configs = splits.fold_configs(config)
        return launch_group(configs, group=splits.new_group_id(splits.CV_PREFIX), store=store, force=force,
                            owner=owner, demo_mode=demo_mode)[0]
    return launch_group([config], group=None, store=store, force=force, owner=owner, demo_mode=demo_mode)[0]


def launch_group(
    configs: Sequence[RunConfig],
    *,
    group: str | None,
    trial: int | None = None,
    sweep_id: int | None = None,
    store: RunStore | None = None,
    force: bool = False,
    owner: str | None = None,
    demo_mode: bool | None = None,
) -> list[int]:
    """Validate every config (and, unless ``force``, its memory estimate), then queue them all as runs of
    ``group`` (and of sweep ``sweep_id``'s ``trial``), then schedule.

    The one launch path of single runs, folds, seeds and sweep trials. Nothing is
    recorded when any config is invalid, or (on a hosted demo) when a cap would be exceeded.
    """
    actors.check_may_change(owner, "launch")  # a read-only share link's session launches nothing
    for config in configs:
        validation.validate(config)
    store = store or open_store()
    for config in configs:
        warm_start.check_source(config, store)  # training.init_from: the run or file exists and reads
    if settings.demo_mode(demo_mode):
        demo.check_launch(configs, owner, store)  # before the memory estimate, which may build the model
    if not force:
        for config in configs:
            admission.check_fits(config)
    slots()  # a bad CONV3D_LAB_SLOTS (or CONV3D_LAB_WORKER_NICE) is reported before anything is recorded
    executors.selected_name()  # so is a bad CONV3D_LAB_EXECUTOR
    processes.worker_nice()
    # On a demo the caps are counted again inside the one transaction that records the runs, so
    # launches at the same moment (other processes, other dashboards) cannot all pass the count.
    admit = demo.admission(owner, len(configs)) if settings.demo_mode(demo_mode) else None
    run_ids = store.create_runs(configs, group=group, trial=trial, owner=owner, admit=admit, sweep_id=sweep_id)
    where = f" ({group}" + (f", trial {trial}" if trial is not None else "") + ")" if group else ""
    for run_id in run_ids:
        store.log_event(run_id, f"{RunStatus.QUEUED.label}{where}: waiting for a free slot")
    schedule(store)
    return run_ids


def schedule(store: RunStore | None = None) -> list[int]:
    """Start a detached worker for each queued run that a free slot can take; returns their ids.

    Called by ``launch``, ``resume`` and ``reconcile``, and by every worker
    when its run ends, so the queue drains without anyone pressing anything.
    With ``CONV3D_LAB_EXECUTOR=ray`` the Ray executor claims and starts them instead
    (engine/jobs/executors/).
    """
    store = store or open_store()
    cluster = executors.selected_cluster()
    if cluster is not None:
        return cluster.submit(store)
    return schedule_here(store)


def schedule_here(store: RunStore) -> list[int]:
    """``schedule`` on this machine (the local executor): detached workers on its slots, or its standby."""
    processes.reap_children()
    names = slots()
    if standby.enabled():
        # A slot with a live standby is left to it: it claims within 0.2 s, with TensorFlow
        # already imported (claims are atomic, so nothing starts twice anyway) -- unless it
        # has let a queued run wait too long, when it is retired and a cold worker starts.
        names = [slot for slot in names if not _leave_to_standby(store, slot)]
    started: list[int] = []
    while (claim := store.claim_next_queued(names)) is not None:
        run_id, slot = claim
        try:
            process = processes.spawn_worker(run_id, slot, store.url)
        except OSError as exc:
            store.transition(
                run_id,
                RunStatus.FAILED,
                from_statuses=[RunStatus.RUNNING],
                finished_at=time.time(),
                error=_spawn_error(exc),
            )
            continue
        # The worker writes the same pid itself; writing it here too closes the
        # window in which reconcile would see a running run without a pid.
        store.update_run(run_id, pid=process.pid)
        store.log_event(run_id, f"started on slot {slot} (worker pid {process.pid})")
        started.append(run_id)
    return started


def stale_heartbeat_s() -> float:
    return float(os.environ.get(STALE_HEARTBEAT_ENV) or STALE_HEARTBEAT_S)


def heartbeat_age(run: RunRecord, now: float | None = None) -> float | None:
    """Seconds since the run's process last showed life: the newer of its store heartbeat and its heartbeat
    file (engine/store/heartbeat.py). The file is touched by a thread of its own, so a worker whose store
    write waits for another process's lock is not taken for silent."""
    now = time.time() if now is None else now
    age = run.heartbeat_age(now)
    touched = file_beat_time(run.id) if run.status == RunStatus.RUNNING else None
    if touched is not None and (run.started_at is None or touched >= run.started_at):
        file_age = max(0.0, now - touched)
        age = file_age if age is None else min(age, file_age)
    return age


def silent_runs(store: RunStore, now: float | None = None) -> list[tuple[RunRecord, float]]:
    """Running runs whose heartbeat is older than ``stale_heartbeat_s()`` although their process lives
    (suspended or hung), with the seconds since their last heartbeat. ``stop`` ends them."""
    now = time.time() if now is None else now
    limit = stale_heartbeat_s()
    return [
        (run, age)
        for run in store.list_runs(statuses=[RunStatus.RUNNING])
        if (age := heartbeat_age(run, now)) is not None and age > limit
    ]


def _leave_to_standby(store: RunStore, slot: str) -> bool:
    """Whether the slot's live standby should get the next queued run; retires one that is hung.

    A standby can claim only while its slot is free, so the time a run waited for a busy slot (folds
    queued behind the one training on the single CPU slot) never counts against it: its wait starts
    when the run was queued or when the slot last came free, whichever is later.
    """
    pid = standby.live_standby(slot)
    if pid is None:
        return False
    waiting = store.list_runs(statuses=[RunStatus.QUEUED])
    if not waiting:
        return True
    if any(run.slot == slot for run in store.list_runs(statuses=[RunStatus.RUNNING])):
        return True  # busy: no worker could take a run now, standby or cold
    claimable_since = max(min(run.queued_at or run.created_at for run in waiting), _slot_free_since(store, slot))
    grace = STANDBY_CLAIM_GRACE_S if standby.warm_standby(slot) == pid else STANDBY_START_GRACE_S
    waited = time.time() - claimable_since
    suspended = processes.is_suspended(pid)
    if waited <= grace and not suspended:
        return True
    how = "is suspended" if suspended else f"has not claimed a run claimable for {waited:.0f} s"
    log.warning("the standby of slot %s (pid %s) %s; retiring it", slot, pid, how)
    standby.retire(slot, pid)
    oldest = min(waiting, key=lambda run: run.queued_at or run.created_at)
    store.log_event(
        oldest.id, f"the warm standby (pid {pid}) {how}: it was ended and a cold worker takes the slot", "warning"
    )
    return False


# How many of the newest ended runs are read to find when a slot came free (runs end on a slot in queue
# order, so the last one to end there is among the newest).
_RECENT_ENDED_RUNS = 50


def _slot_free_since(store: RunStore, slot: str) -> float:
    """When the last run on ``slot`` ended (0 when none is known)."""
    ended = store.list_runs(statuses=list(ENDED_STATUSES), limit=_RECENT_ENDED_RUNS)
    return max((run.finished_at or 0.0 for run in ended if run.slot == slot), default=0.0)


def stop(
    run_id: int, *, store: RunStore | None = None, wait: bool = False, grace_s: float = DEFAULT_STOP_GRACE_S,
    owner: str | None = None, demo_mode: bool | None = None,
) -> RunStatus:
    """Stop a queued or running run; returns its status after the request.

    A queued run leaves the queue at once (``stopped``). A running run is
    asked to stop through the store flag, which the recording callback reads
    while training and which ends ``fit`` cleanly (the epochs recorded so far
    and ``last.keras`` are kept). If it is still running after ``grace_s``,
    its process group gets SIGTERM, then SIGKILL.

    With ``wait=False`` (the dashboard) this returns at once, usually
    still running while the stop is under way; the escalation runs in a small
    detached helper process (``python -m engine.jobs.escalate``), which also
    works when the caller is a short-lived CLI. With ``wait=True`` it blocks
    until the run has ended and returns the final status. A run that has
    already ended keeps its status. On a hosted demo a caller with an ``owner``
    may stop only the runs it launched (``NotYourRunError`` otherwise).
    """
    store = store or open_store()
    if owner is not None:
        demo.check_owner(store.get_run(run_id), owner, demo_mode, "stop")
    if store.transition(run_id, RunStatus.STOPPED, from_statuses=[RunStatus.QUEUED], finished_at=time.time()):
        store.log_event(run_id, "stopped while queued (removed from the queue)")
        return RunStatus.STOPPED
    run = store.get_run(run_id)
    if run.status != RunStatus.RUNNING:
        return run.status
    store.request_stop(run_id)
    store.log_event(run_id, f"stop requested (the worker is terminated if it is still running after {grace_s:g} s)")
    if wait:
        return escalate_stop(store, run_id, grace_s)
    processes.spawn_stop_helper(run_id, grace_s, store.url)
    return store.get_run(run_id).status


def escalate_stop(store: RunStore, run_id: int, grace_s: float = DEFAULT_STOP_GRACE_S) -> RunStatus:
    """Wait ``grace_s`` for a requested stop, then SIGTERM, then SIGKILL the worker; returns the final status."""
    if _wait_while_running(store, run_id, grace_s):
        return store.get_run(run_id).status
    run = store.get_run(run_id)
    cluster = executors.for_run(run)
    if cluster is not None:
        how = cluster.stop(store, run)
    elif run.host is not None and not liveness.on_this_host(run):
        # A worker on another machine cannot be signalled from here; it still sees the flag.
        return run.status
    else:
        how = terminate_here(store, run, grace_s)
    if store.transition(
        run_id,
        RunStatus.STOPPED,
        from_statuses=[RunStatus.RUNNING],
        finished_at=time.time(),
        error=f"Stopped: the worker did not stop within {grace_s:g} s and {how}; the epochs recorded so far are kept.",
    ):
        store.log_event(run_id, f"run stopped (worker {how})", "warning")
        journal.run_ended(store, run_id)  # the worker could not write its folder copy itself
        schedule(store)  # a killed worker cannot start the next queued run itself
    return store.get_run(run_id).status


def terminate_here(store: RunStore, run: RunRecord, grace_s: float) -> str:
    """End the local worker of ``run`` (the local executor's stop): SIGTERM, then SIGKILL; returns how."""
    run_id, pid = run.id, run.pid
    how = "could not be found"
    if pid and liveness.process_alive(run, pid):
        store.log_event(run_id, f"no clean stop after {grace_s:g} s; sending SIGTERM to the worker (pid {pid})", "warning")
        processes.signal_group(pid, signal.SIGTERM)
        how = "was terminated"
        if _wait_while_running(store, run_id, TERMINATE_GRACE_S):
            return how  # the worker recorded the stop itself (the caller's transition finds it ended)
        if liveness.process_alive(run, pid):
            store.log_event(run_id, f"the worker (pid {pid}) ignored SIGTERM; sending SIGKILL", "warning")
            processes.signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while liveness.process_alive(run, pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            how = "was killed"
    return how


def reconcile(store: RunStore | None = None) -> list[int]:
    """Mark ``running`` runs whose worker is gone as ``interrupted``; returns their ids.

    On this host a run is gone when its worker process no longer exists (or
    its pid now belongs to another program). A run whose worker cannot be
    checked by pid (another host, or no pid recorded yet) is gone when its
    heartbeat is older than ``stale_heartbeat_s()``. A live local worker is never
    interrupted, however quiet (a suspended process may continue): resuming it
    would train the run twice; ``silent_runs`` lists it, and ``stop`` ends it. Afterwards the queue is scheduled, since slots may have freed.
    """
    store = store or open_store()
    processes.reap_children()
    changed: list[int] = []
    now = time.time()
    for run in store.list_runs(statuses=[RunStatus.RUNNING]):
        reason = _why_gone(run, now)
        if reason is None:
            continue
        after = checkpoints.resume_epoch(paths.run_dir(run.id, create=False), run.epochs_done)
        note = (
            f"Interrupted: {reason} (noticed {datetime.fromtimestamp(now):%Y-%m-%d %H:%M:%S}); "
            f"resume continues after epoch {after}."
        )
        if store.transition(run.id, RunStatus.INTERRUPTED, from_statuses=[RunStatus.RUNNING], finished_at=now, error=note):
            store.log_event(run.id, note, "warning")
            changed.append(run.id)
    schedule(store)
    return changed


def resume(run_id: int, *, store: RunStore | None = None, owner: str | None = None,
           demo_mode: bool | None = None) -> int:
    """Queue an interrupted or stopped run again; it continues after the epoch its ``last.keras`` holds.

    The worker reloads ``last.keras`` (weights and optimizer state), drops
    anything recorded after that epoch, and appends to the same history.
    Raises ``RunStateError`` for any other status, and on a hosted demo
    ``NotYourRunError`` for a run another ``owner`` launched, and ``DemoLimitError`` when queueing it
    again would exceed the active-run caps or the visitor's daily training minutes (engine/hosting/demo.py).
    """
    store = store or open_store()
    run = store.get_run(run_id)
    demo.check_owner(run, owner, demo_mode, "resume")
    if not run.status.is_resumable:
        raise RunStateError(_why_not_resumable(run))
    after_epoch = run.epochs_done
    if run.epochs_done:
        artefacts.run_folder(run_id)  # with CONV3D_LAB_ARTIFACTS set: the checkpoint from the shared root
        last = paths.run_dir(run_id) / checkpoints.LAST
        why = checkpoints.problem(last)
        if why:
            raise RunStateError(
                f"Run {run_id} cannot be resumed after epoch {run.epochs_done}: its checkpoint {last.name} {why}. "
                "Launch a new run with the same configuration instead."
            )
        # last.keras is written by elapsed time: it may hold an earlier epoch than the last one recorded.
        after_epoch = checkpoints.resume_epoch(last.parent, run.epochs_done)
    # A resumed run is queued again: on a demo it counts against the same caps as a launch, checked
    # in the transaction that queues it.
    admit = demo.admission(owner, 1, action="resume") if settings.demo_mode(demo_mode) else None
    moved = store.requeue(
        run_id,
        from_statuses=RESUMABLE_STATUSES,
        admit=admit,
        queued_at=time.time(),
        resume_from_epoch=after_epoch,
        stop_requested=False,
        finished_at=None,
        pid=None,
        error=None,
        traceback=None,
    )
    if not moved:  # someone else resumed or changed it in between
        raise RunStateError(_why_not_resumable(store.get_run(run_id)))
    store.log_event(run_id, f"resume requested: queued to continue after epoch {after_epoch}" + (
        f" (the epoch its checkpoint {checkpoints.LAST} holds; epochs {after_epoch + 1}-{run.epochs_done} are "
        "trained again)" if after_epoch < (run.epochs_done or 0) else ""))
    schedule(store)
    return int(run_id)


def log_tail(run_id: int, lines: int = 50) -> str:
    """The last ``lines`` lines of the run's worker log (``runs/<id>/worker.log``); '' when there is none."""
    path = processes.worker_log_path(run_id, create=False)
    if not path.exists():
        return ""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return "".join(deque(handle, maxlen=max(0, int(lines))))


# ------------------------------------------------------------------ helpers
def _spawn_error(exc: OSError) -> str:
    """The sentence of a worker that could not be started: the path that failed and what to do."""
    if exc.filename is None:
        return f"The worker process could not be started ({exc}); check the lab's Python environment."
    path, reason, home = Path(exc.filename), exc.strerror or str(exc), paths.lab_home()
    if not path.is_relative_to(home):  # e.g. the Python executable is gone
        return f"The worker process could not be started ({reason}: {path}); check the lab's Python environment."
    return (
        f"The worker process could not be started: {path} could not be written ({reason}). "
        f"Run folders must be writable folders in the lab's workspace {home} (set by CONV3D_LAB_HOME): "
        "fix the permissions or move away what is in the way, then launch the run again."
    )


def _why_gone(run: RunRecord, now: float) -> str | None:
    """Why a ``running`` run has no live worker, or None when it has one (or may have)."""
    cluster = executors.for_run(run)
    if cluster is not None:
        return cluster.reconcile(run, now)
    if run.pid and liveness.on_this_host(run):
        if liveness.process_alive(run):
            return None
        return f"its worker process (pid {run.pid}) has ended without recording an outcome"
    age = heartbeat_age(run, now)
    if age is not None and age > stale_heartbeat_s():
        where = f" on {run.host}" if run.host else ""
        return f"no heartbeat from its worker{where} for {age:.0f} s"
    return None


def _wait_while_running(store: RunStore, run_id: int, timeout_s: float) -> bool:
    """Poll until the run is no longer ``running``; True when that happened within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if store.get_run(run_id).status != RunStatus.RUNNING:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def _why_not_resumable(run: RunRecord) -> str:
    hint = run.status.resume_hint
    return f"Run {run.id} is {run.status.label}; only an interrupted or stopped run can be resumed" + (
        f" ({hint})." if hint else "."
    )
