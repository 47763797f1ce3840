"""The Ray executor (``CONV3D_LAB_EXECUTOR=ray``): each claimed run trains in a Ray actor on a cluster.

The queue stays in the store: ``submit`` claims queued runs on the slots ``ray-0`` .. ``ray-<n-1>``
(``n`` = ``CONV3D_LAB_RAY_MAX_CONCURRENT``, default 4), so never more than ``n`` runs (and sweep trials,
engine/jobs/executors/base.py ``concurrency``) are in flight, and two submitters never start one run
twice. For each claim it creates a detached, named Ray actor (``run-<id>`` in a namespace of the store's
URL) that requests one GPU where the cluster has GPUs (``CONV3D_LAB_RAY_GPUS`` per run, default 1), or
``CONV3D_LAB_RAY_CPUS`` CPUs (default 1) where it has none. The actor starts the lab's own worker
(``python -m engine worker ID``: the same ``execute_run``, writing epochs to the shared store) as its child,
which dies with it, and when the run ends submits the next queued runs and exits.

An actor rather than a task: a task is owned by the process that submitted it (a dashboard's script run,
a CLI that exits at once), while a detached named actor can be found, checked and cancelled from any
process that shares the store. So:

- stop: the store flag first (the worker ends ``fit`` cleanly), then ``ray.kill`` of the actor (its worker
  dies with it) and the run is marked ``stopped``;
- reconcile: a running run whose actor is gone (node lost, killed) is ``interrupted``, resumable from its
  last checkpoint like a local one.

Every node must see the same lab: the repository at the same path, the store URL (PostgreSQL on a
cluster) and the workspace and data folders (``CONV3D_LAB_HOME``, ``CONV3D_LAB_DATA``) on shared storage.
``RAY_ADDRESS`` names the cluster (``auto``, ``ray://head:10001``); without it the first process that
submits starts a local Ray instance (and passes its address to the processes it starts).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from engine import paths
from engine.errors import LabError
from engine.jobs.executors.base import RAY_SLOT_PREFIX, Executor
from engine.runs import RunRecord, RunStatus
from engine.store import RunStore, open_store

MAX_CONCURRENT_ENV = "CONV3D_LAB_RAY_MAX_CONCURRENT"
DEFAULT_MAX_CONCURRENT = 4
GPUS_ENV = "CONV3D_LAB_RAY_GPUS"
CPUS_ENV = "CONV3D_LAB_RAY_CPUS"
# Set in the environment of the worker an actor starts: its own ``schedule`` submits nothing (the actor,
# already connected to Ray, submits the next runs when the worker has ended).
IN_RAY_RUN_ENV = "CONV3D_LAB_IN_RAY_RUN"
# A run claimed this recently whose worker has not recorded its pid yet may still be getting its actor.
_START_GRACE_S = 60.0
# How long a liveness check waits for a busy actor's answer (a timeout counts as alive).
_PING_TIMEOUT_S = 2.0
# A killed actor's name is free again a moment after it died.
_NAME_RETRY_S = 15.0


def _positive_number(variable: str, default: float, whole: bool) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = -1
    if value <= 0 if whole else value < 0:
        kind = "a whole number of at least 1" if whole else "a number of at least 0"
        raise LabError(f"{variable} is {raw!r}; set it to {kind}, or unset it ({default:g}).")
    return value


def max_concurrent() -> int:
    """How many runs train on Ray at once: ``$CONV3D_LAB_RAY_MAX_CONCURRENT`` (default 4)."""
    return int(_positive_number(MAX_CONCURRENT_ENV, DEFAULT_MAX_CONCURRENT, whole=True))


def actor_name(run_id: int) -> str:
    return f"run-{int(run_id)}"


def namespace(store_url: str) -> str:
    """The Ray namespace of one lab (its store): two labs on one cluster never see each other's actors."""
    return "conv3d-lab-" + hashlib.sha256(store_url.encode()).hexdigest()[:12]


def _lab_environment(store_url: str) -> dict[str, str]:
    """The lab's settings an actor (and the worker it starts) needs on any node."""
    env = {key: value for key, value in os.environ.items() if key.startswith("CONV3D_LAB_")}
    env.update({
        "CONV3D_LAB_DB": store_url,
        "CONV3D_LAB_HOME": str(paths.lab_home()),
        "CONV3D_LAB_DATA": str(paths.data_root()),
        "CONV3D_LAB_EXECUTOR": "ray",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(paths.REPO_ROOT), os.environ.get("PYTHONPATH")])),
    })
    env.pop(IN_RAY_RUN_ENV, None)
    return env


def _die_with_parent() -> None:
    """In the worker, before exec: the kernel kills it when its actor's process dies (Linux)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class RunActor:
    """One run on a Ray node: starts the lab's worker for it, waits, then submits the next runs and exits.

    The work starts in the constructor (on a thread, so ``ping`` answers meanwhile): a detached actor's
    creation belongs to the cluster, while a method call belongs to the process that made it and is lost
    when that process exits first (a CLI, or the actor of the previous run that submitted this one).
    """

    def __init__(self, run_id: int, store_url: str) -> None:
        import threading

        self._thread = threading.Thread(target=self._run, args=(int(run_id), store_url), daemon=True)
        self._thread.start()

    def _run(self, run_id: int, store_url: str) -> None:
        log_path = paths.run_dir(run_id) / "worker.log"
        env = dict(os.environ)
        env.update({IN_RAY_RUN_ENV: "1", "CONV3D_LAB_STANDBY": "0", "PYTHONUNBUFFERED": "1"})
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            with open(log_path, "ab") as log:
                log.write(f"--- {datetime.now():%Y-%m-%d %H:%M:%S} worker for run {run_id} in Ray actor "
                          f"{actor_name(run_id)} (pid {os.getpid()})\n".encode())
                log.flush()
                worker = subprocess.Popen(
                    [sys.executable, "-m", "engine", "worker", str(run_id)], cwd=paths.REPO_ROOT, env=env,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                )
            worker.wait()
            RayExecutor.shared().submit(open_store(store_url))  # the worker left the next runs to us
        except Exception as exc:  # noqa: BLE001 - the next launch or reconcile drains the queue then
            with open(log_path, "ab") as log:
                log.write(f"the Ray actor of run {run_id} failed: {type(exc).__name__}: {exc}\n".encode())
        finally:
            self._exit()

    @staticmethod
    def _exit() -> None:
        """End this actor, giving its CPUs or GPU back to the cluster."""
        import ray

        try:
            ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
        finally:
            time.sleep(5)
            os._exit(0)

    def ping(self) -> int:
        return os.getpid()


class RayExecutor(Executor):
    name = "ray"
    _shared: "RayExecutor | None" = None

    def __init__(self) -> None:
        self._actor_class: Any = None

    @classmethod
    def shared(cls) -> "RayExecutor":
        """This process's Ray executor (one connection to the cluster per process)."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    # ---------------------------------------------------------------- ray
    @staticmethod
    def _ray():
        """The ``ray`` module, connected to ``$RAY_ADDRESS`` (or a local instance started here)."""
        try:
            import ray
        except ImportError as exc:
            raise LabError("CONV3D_LAB_EXECUTOR is ray but Ray is not installed; install it with `python -m pip "
                           "install -r requirements-cluster.txt`, or unset CONV3D_LAB_EXECUTOR.") from exc
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS") or None
            try:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError) as exc:
                raise LabError(f"Cannot connect to the Ray cluster at RAY_ADDRESS={address!r} ({exc}); start it "
                               "(`ray start --head`) or point RAY_ADDRESS at its head.") from exc
            if address is None:  # a local instance: the processes this one starts join it
                os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
        return ray

    def _resources(self, ray) -> dict[str, float]:
        if ray.cluster_resources().get("GPU", 0) > 0:
            return {"num_gpus": _positive_number(GPUS_ENV, 1, whole=False), "num_cpus": 1}
        return {"num_cpus": _positive_number(CPUS_ENV, 1, whole=False)}

    def _actor(self, run: RunRecord, store_url: str):
        ray = self._ray()
        try:
            return ray.get_actor(actor_name(run.id), namespace=namespace(store_url))
        except ValueError:
            return None

    # ------------------------------------------------------ the interface
    def slot_names(self) -> list[str]:
        return [f"{RAY_SLOT_PREFIX}{index}" for index in range(max_concurrent())]

    def submit(self, store: RunStore) -> list[int]:
        if os.environ.get(IN_RAY_RUN_ENV):
            return []  # a worker in an actor: the actor submits when it has ended
        ray = self._ray()
        if self._actor_class is None:
            self._actor_class = ray.remote(RunActor)
        resources = self._resources(ray)
        started: list[int] = []
        while (claim := store.claim_next_queued(self.slot_names())) is not None:
            run_id, slot = claim
            try:
                self._start(run_id, store.url, resources)
            except Exception as exc:
                store.transition(run_id, RunStatus.FAILED, from_statuses=[RunStatus.RUNNING], finished_at=time.time(),
                                 error=f"The run could not be started on Ray ({type(exc).__name__}: {exc}); "
                                       "check the cluster (`ray status`) and RAY_ADDRESS, then resume it.")
                continue
            asked = ", ".join(f"{key[4:]}={value:g}" for key, value in resources.items())
            store.log_event(run_id, f"started on Ray as actor {actor_name(run_id)} (slot {slot}; {asked})")
            started.append(run_id)
        return started

    def _start(self, run_id: int, store_url: str, resources: dict[str, float]) -> None:
        deadline = time.monotonic() + _NAME_RETRY_S
        while True:
            try:
                self._actor_class.options(
                    name=actor_name(run_id), namespace=namespace(store_url), lifetime="detached", max_restarts=0,
                    runtime_env={"env_vars": _lab_environment(store_url)}, **resources,
                ).remote(run_id, store_url)
                return
            except ValueError:  # the name is still held by the run's previous actor, which is dying
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self, store: RunStore, run: RunRecord) -> str:
        actor = self._actor(run, store.url)
        if actor is None:
            return "its Ray actor could not be found"
        store.log_event(run.id, f"no clean stop in time; cancelling Ray actor {actor_name(run.id)}", "warning")
        self._ray().kill(actor, no_restart=True)
        return "its Ray actor was cancelled"

    def is_alive(self, run: RunRecord, store_url: str | None = None) -> bool:
        ray = self._ray()
        actor = self._actor(run, store_url or paths.database_url())
        if actor is None:
            return False
        try:
            ray.get(actor.ping.remote(), timeout=_PING_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            return True  # busy or still waiting for resources: not known to be gone
        except ray.exceptions.RayActorError:
            return False
        return True

    def reconcile(self, run: RunRecord, now: float) -> str | None:
        if self.is_alive(run):
            return None
        claimed_age = now - (run.heartbeat_at or run.started_at or 0.0)
        if run.pid is None and claimed_age < _START_GRACE_S:
            return None  # just claimed: its actor may be being created
        return f"its Ray actor {actor_name(run.id)} is gone (its node was lost, or it was killed)"


__all__ = ["CPUS_ENV", "GPUS_ENV", "IN_RAY_RUN_ENV", "MAX_CONCURRENT_ENV", "RayExecutor", "RunActor", "actor_name",
           "max_concurrent", "namespace"]
