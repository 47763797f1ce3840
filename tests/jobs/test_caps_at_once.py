"""The demo's active-run caps hold when launches and resumes come at the same instant from many processes.

Each test forks N launchers (or resumers) that are released together (launch_at_once.py), on SQLite
and on a private PostgreSQL server (tests/store/postgres.py; skipped where it is not installed). The
count and the insert are one transaction (BEGIN IMMEDIATE on SQLite, an advisory transaction lock on
Postgres), so however the processes interleave, the store never holds more queued or running runs of
one visitor, or of all visitors together, than the caps allow. No worker starts (``--no-workers``):
the caps count queued and running runs alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import settings
from engine.runs import ACTIVE_STATUSES, RunStatus
from engine.store import open_store
from tests.conftest import REPO_ROOT
from tests.jobs.helpers import tiny_config

LAUNCHER = Path(__file__).with_name("launch_at_once.py")
PER_VISITOR, TOTAL = 2, 8


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, jobs_lab, monkeypatch):
    """The lab's store on SQLite (lab.db in the test's workspace) or on a fresh Postgres database."""
    monkeypatch.setenv(settings.DEMO_CAP_ENV_PREFIX + "MAX_ACTIVE_RUNS_PER_SESSION", str(PER_VISITOR))
    monkeypatch.setenv(settings.DEMO_CAP_ENV_PREFIX + "MAX_ACTIVE_RUNS_TOTAL", str(TOTAL))
    if request.param == "postgresql":
        request.getfixturevalue("postgres_url")
    return request.param


def _at_once(tmp_path, count: int, *options: str) -> tuple[list[int], list[str]]:
    """Run ``count`` launchers released together; (accepted run ids, refusal sentences)."""
    config_path = tmp_path / "config.json"
    config_path.write_text(tiny_config(epochs=1).to_json())
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), str(config_path), str(count), "--demo", "--no-workers", "--connect-first",
         *options],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "database is locked" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == count and len({line["pid"] for line in lines}) == count, lines  # separate processes
    return [line["run_id"] for line in lines if "run_id" in line], [line["refused"] for line in lines
                                                                      if "refused" in line]


def _active(store) -> list:
    return store.list_runs(statuses=ACTIVE_STATUSES)


def _stopped_runs(store, owners: list[str]) -> list[int]:
    """One stopped run (no epoch recorded: resumable without a checkpoint) per entry of ``owners``."""
    run_ids = []
    for owner in owners:
        run_id = store.create_run(tiny_config(epochs=1), owner=owner)
        store.transition(run_id, RunStatus.STOPPED, from_statuses=[RunStatus.QUEUED], finished_at=time.time())
        run_ids.append(run_id)
    return run_ids


def test_six_launches_at_once_by_one_visitor_admit_the_per_visitor_cap(backend, tmp_path):
    accepted, refused = _at_once(tmp_path, 6, "--owner", "visitor-a")
    assert len(accepted) == PER_VISITOR and len(refused) == 6 - PER_VISITOR, (accepted, refused)
    assert all(f"at most {PER_VISITOR} runs queued or running" in sentence for sentence in refused)
    store = open_store()
    assert sorted(run.id for run in _active(store)) == sorted(accepted)
    assert len(store.list_runs()) == PER_VISITOR  # a refused launch records nothing


def test_twelve_launches_at_once_by_twelve_visitors_admit_the_total_cap(backend, tmp_path):
    accepted, refused = _at_once(tmp_path, 12, "--owner-each")
    assert len(accepted) == TOTAL and len(refused) == 12 - TOTAL, (accepted, refused)
    assert all(f"at most {TOTAL} runs at a time for all visitors together" in sentence for sentence in refused)
    active = _active(open_store())
    assert len(active) == TOTAL and len({run.owner for run in active}) == TOTAL


def test_six_resumes_at_once_by_one_visitor_admit_the_per_visitor_cap(backend, tmp_path):
    store = open_store()
    run_ids = _stopped_runs(store, ["visitor-a"] * 6)
    accepted, refused = _at_once(tmp_path, 6, "--owner", "visitor-a", "--resume", ",".join(map(str, run_ids)))
    assert len(accepted) == PER_VISITOR and len(refused) == 6 - PER_VISITOR, (accepted, refused)
    assert all("this resume adds 1" in sentence for sentence in refused)
    assert sorted(run.id for run in _active(store)) == sorted(accepted)
    # The refused resumes left their runs stopped, resumable later.
    assert {store.get_run(i).status for i in set(run_ids) - set(accepted)} == {RunStatus.STOPPED}


def test_launches_and_resumes_at_once_by_many_visitors_admit_the_total_cap(backend, tmp_path):
    store = open_store()
    run_ids = _stopped_runs(store, [f"visitor-{i}" for i in range(12)])
    accepted, refused = _at_once(tmp_path, 12, "--owner-each", "--resume", ",".join(map(str, run_ids)))
    assert len(accepted) == TOTAL and len(refused) == 12 - TOTAL, (accepted, refused)
    # Then six new launches by six visitors at once: the total cap is already full.
    more, refused_more = _at_once(tmp_path, 6, "--owner-each")
    assert more == [] and len(refused_more) == 6
    assert len(_active(store)) == TOTAL


def test_stop_and_resume_three_times_over_never_exceeds_the_per_visitor_cap(backend, jobs_lab, monkeypatch):
    """The probe of the issue: launch 2, stop them, resume them, three times over; then resumes are refused."""
    from engine import jobs
    from engine.hosting import demo
    from engine.jobs import control

    monkeypatch.setattr(control, "schedule", lambda store=None: [])
    store = open_store()
    owned = [jobs.launch(tiny_config(epochs=1), store=store, owner="visitor-a", demo_mode=True) for _ in range(2)]
    for _round in range(3):
        for run_id in owned:
            jobs.stop(run_id, store=store, owner="visitor-a", demo_mode=True)
        owned += [jobs.launch(tiny_config(epochs=1), store=store, owner="visitor-a", demo_mode=True)
                  for _ in range(2)]
        for run_id in owned[:-2]:
            with pytest.raises(demo.DemoLimitError, match="you have 2 and this resume adds 1"):
                jobs.resume(run_id, store=store, owner="visitor-a", demo_mode=True)
        assert len([run for run in _active(store) if run.owner == "visitor-a"]) == PER_VISITOR
