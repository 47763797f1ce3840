"""A private PostgreSQL server for tests: ``postgres_server`` (one per test session) and ``postgres_url``
(a fresh, empty database on it per test).

The server is Debian's PostgreSQL (``tools/install-test-deps.sh`` installs the ``postgresql`` package):
``initdb`` into a temporary folder, ``pg_ctl start`` on a free loopback port with trust authentication
and no Unix socket, ``pg_ctl stop`` at the end of the session. PostgreSQL refuses to run as root, so
as root the server runs as the ``postgres`` user (or ``nobody``) through ``runuser``. Tests that use
these fixtures are skipped, with the reason, where the binaries are missing or the server cannot start.

``store_url`` is the lab's store for one test: SQLite (``lab.db`` in the test's workspace) unless the test
is parametrised over ``BACKENDS`` (``on_both_stores``, or a fixture with ``params=BACKENDS`` that calls
``backend_url``), when its PostgreSQL half gets a fresh database on the private server.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

# Where Debian puts the server binaries (the newest version wins); $CONV3D_LAB_PG_BIN overrides it.
PG_BIN_ENV = "CONV3D_LAB_PG_BIN"
_START_TIMEOUT_S = 60


def pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    explicit = os.environ.get(PG_BIN_ENV)
    candidates = [explicit] if explicit else sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                                    key=lambda p: int(Path(p).parent.name), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user() -> tuple[list[str], str | None]:
    """The command prefix that runs the server's tools as a user PostgreSQL accepts, and that user."""
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        try:
            import pwd

            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"], user
    return [], None


class PostgresServer:
    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.prefix, self.user = _as_server_user()
        # Not under pytest's tmp_path: that folder is private to root, and the server runs as another user.
        self.root = Path(tempfile.mkdtemp(prefix="conv3d-lab-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        if self.user:
            shutil.chown(self.root, user=self.user)
            os.chmod(self.root, 0o700)

    def _run(self, *argv: str, timeout: float = _START_TIMEOUT_S) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, *argv], capture_output=True, text=True, timeout=timeout,
                              cwd=self.root)

    def start(self) -> None:
        done = self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "lab", "--auth=trust",
                         "--encoding=UTF8", "--no-sync")
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories='' -c fsync=off -c max_connections=200"
        done = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                         "-t", str(_START_TIMEOUT_S), "-o", options, "start")
        if done.returncode:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()} {log}")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://lab@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg2

        name = f"lab_{uuid.uuid4().hex[:12]}"
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="lab", dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)


# The stores every store, jobs and sweeps test contract is checked on.
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL server on a free loopback port for the whole session; skipped without one."""
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl; tools/install-test-deps.sh installs it)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed (requirements.txt)")
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        server.stop()
        pytest.skip(f"a private PostgreSQL server could not be started: {e}")
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, monkeypatch):
    """A fresh database on the private server, set as the lab's store (``CONV3D_LAB_DB``) for this test."""
    url = postgres_server.create_database()
    monkeypatch.setenv("CONV3D_LAB_DB", url)
    yield url
    from engine.store import sql

    engine = sql._ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


def backend_url(request: pytest.FixtureRequest, backend: str) -> str:
    """The store URL of ``backend`` for the requesting test, set as the lab's store (``CONV3D_LAB_DB``)
    for it and the workers it starts: the workspace's SQLite file, or a fresh PostgreSQL database."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown store backend {backend!r}; one of {BACKENDS}")
    request.getfixturevalue("lab_home")  # first: it points the lab at the workspace's SQLite file
    if backend == "postgresql":
        return request.getfixturevalue("postgres_url")
    from engine import paths

    return paths.database_url()


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """The lab's store URL for this test: SQLite by default, each of ``BACKENDS`` under ``on_both_stores``."""
    return backend_url(request, getattr(request, "param", "sqlite"))


# Runs a test once per store backend (its Postgres half skips, with the reason, without a server).
on_both_stores = pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
