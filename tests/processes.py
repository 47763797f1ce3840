"""Finding the processes a test's lab workspace started (workers, standby, dashboard server)."""

from __future__ import annotations

import os
from pathlib import Path

from engine.jobs.processes import proc_stat


def workspace_processes(home: Path) -> list[tuple[int, str]]:
    """(pid, command line) of live processes (not zombies) whose environment has CONV3D_LAB_HOME=home.

    Matched by the environment, so processes of other test sessions on the same
    machine are never touched.
    """
    marker = f"CONV3D_LAB_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = proc_stat(int(entry.name))[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if state != "Z":
            found.append((int(entry.name), command))
    return found
