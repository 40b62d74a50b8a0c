"""The PostgreSQL cluster the project owns: initdb, start, stop, databases.

The cluster lives in the project's state directory (git-ignored), listens on
127.0.0.1 only, on its own port, with no Unix socket (so a long project path
cannot exceed the socket path limit) and SCRAM passwords generated at initdb
and kept in a 0600 file. initdb refuses to run as root, so when we are root
every server program runs as the `postgres` system user that Debian's
packages create, and the server's own files belong to that user.

The cluster's single role is its superuser: PostGIS cannot be created by an
unprivileged role, and nobody but the project uses this cluster.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

SERVER_USER = "postgres"
DEBIAN_BIN_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Written once at initdb; the port is given at each start so settings can move it.
_SERVER_CONF = """
# civic-gis project cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
password_encryption = 'scram-sha-256'
shared_buffers = '512MB'
work_mem = '32MB'
maintenance_work_mem = '256MB'
effective_cache_size = '4GB'
max_connections = 100
logging_collector = off
# JIT compiles the set-based checks for seconds to save milliseconds.
jit = off
"""
_HBA = """# civic-gis project cluster: TCP on loopback with passwords, nothing else
host all all 127.0.0.1/32 scram-sha-256
"""


class ClusterError(RuntimeError):
    """The project cluster cannot be set up, started or reached; the message says why."""


@dataclass(frozen=True)
class ClusterConfig:
    """Where the cluster lives and how it is reached."""

    state_dir: Path
    port: int
    database: str = "civic_gis"
    user: str = "civic_gis"
    bin_dir: Path | None = None
    host: str = "127.0.0.1"

    @property
    def server_dir(self) -> Path:
        """Everything the server process writes (owned by `postgres` when we are root)."""
        return self.state_dir / "postgres"

    @property
    def data_dir(self) -> Path:
        """PGDATA."""
        return self.server_dir / "data"

    @property
    def log_file(self) -> Path:
        """Server log."""
        return self.server_dir / "server.log"

    @property
    def password_file(self) -> Path:
        """The superuser's password, readable by the project user only."""
        return self.state_dir / "pg_password"


@dataclass(frozen=True)
class ClusterStatus:
    """What `civic-gis db status` reports."""

    initialised: bool
    running: bool
    port: int
    data_dir: Path
    pid: int | None
    url: str | None


def _is_root() -> bool:
    return os.geteuid() == 0


def find_bin_dir(config: ClusterConfig) -> Path:
    """The directory holding initdb and pg_ctl: configured, Debian's newest, or on PATH."""
    if config.bin_dir is not None:
        if not (config.bin_dir / "initdb").exists():
            raise ClusterError(f"no initdb in CIVIC_GIS_PG_BIN_DIR={config.bin_dir}")
        return config.bin_dir
    if DEBIAN_BIN_ROOT.is_dir():
        found = sorted(
            (p for p in DEBIAN_BIN_ROOT.glob("*/bin") if (p / "initdb").exists()),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        )
        if found:
            return found[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ClusterError(
        "PostgreSQL server programs not found: "
        "apt-get install postgresql-15 postgresql-15-postgis-3"
    )


def _run(
    config: ClusterConfig, program: str, args: Sequence[str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a server program, as `postgres` when we are root."""
    command = [str(find_bin_dir(config) / program), *args]
    if _is_root():
        command = ["runuser", "-u", SERVER_USER, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise ClusterError(f"{program} failed (exit {result.returncode}): {detail}")
    return result


def _give_to_server(path: Path) -> None:
    """Hand a path to the server's system user (only needed when we are root)."""
    if _is_root():
        shutil.chown(path, SERVER_USER, SERVER_USER)


@contextmanager
def _locked(config: ClusterConfig) -> Iterator[None]:
    """One process at a time sets up or starts the cluster (parallel test runs, CLI)."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with (config.state_dir / ".cluster.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _password(config: ClusterConfig) -> str:
    try:
        return config.password_file.read_text().strip()
    except FileNotFoundError as exc:
        raise ClusterError(
            f"the cluster in {config.data_dir} has no password file {config.password_file}"
        ) from exc


def url(config: ClusterConfig, database: str | None = None) -> str:
    """SQLAlchemy URL of a database on the cluster (the project database by default)."""
    return (
        f"postgresql+psycopg://{quote(config.user)}:{quote(_password(config), safe='')}"
        f"@{config.host}:{config.port}/{database or config.database}"
    )


def _conninfo(config: ClusterConfig, database: str) -> str:
    return psycopg.conninfo.make_conninfo(
        host=config.host,
        port=config.port,
        user=config.user,
        password=_password(config),
        dbname=database,
        connect_timeout=5,
    )


def _initialised(config: ClusterConfig) -> bool:
    return (config.data_dir / "PG_VERSION").exists()


def _check_reachable_by_server(config: ClusterConfig) -> None:
    if not _is_root():
        return
    probe = subprocess.run(
        ["runuser", "-u", SERVER_USER, "--", "test", "-x", str(config.state_dir)],
        check=False,
        capture_output=True,
    )
    if probe.returncode != 0:
        raise ClusterError(
            f"the '{SERVER_USER}' user cannot reach {config.state_dir}: "
            "set CIVIC_GIS_STATE_DIR to a directory it can traverse (e.g. under /tmp or /srv)"
        )


def _initdb(config: ClusterConfig) -> None:
    _check_reachable_by_server(config)
    config.server_dir.mkdir(parents=True, exist_ok=True)
    _give_to_server(config.server_dir)
    if not config.password_file.exists():
        config.password_file.touch(mode=0o600)
        config.password_file.write_text(secrets.token_urlsafe(24) + "\n")
    # initdb reads the password from a file the server user can read; remove it after.
    pwfile = config.server_dir / ".initdb-password"
    pwfile.write_text(_password(config) + "\n")
    pwfile.chmod(0o600)
    _give_to_server(pwfile)
    try:
        _run(
            config,
            "initdb",
            [
                "-D",
                str(config.data_dir),
                "-U",
                config.user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
        )
    finally:
        pwfile.unlink(missing_ok=True)
    with (config.data_dir / "postgresql.conf").open("a") as conf:
        conf.write(_SERVER_CONF)
    (config.data_dir / "pg_hba.conf").write_text(_HBA)


def _pid(config: ClusterConfig) -> int | None:
    """The postmaster's pid if the server is running, else None."""
    try:
        first = (config.data_dir / "postmaster.pid").read_text().splitlines()[0]
    except (FileNotFoundError, IndexError, PermissionError):
        return None
    result = _run(config, "pg_ctl", ["status", "-D", str(config.data_dir)], check=False)
    return int(first) if result.returncode == 0 and first.isdigit() else None


def _port_in_use(config: ClusterConfig) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((config.host, config.port)) == 0


def _start(config: ClusterConfig) -> None:
    if _port_in_use(config):
        raise ClusterError(
            f"port {config.port} on {config.host} is taken by another program: "
            "set CIVIC_GIS_PG_PORT to a free port"
        )
    result = _run(
        config,
        "pg_ctl",
        [
            "start",
            "-D",
            str(config.data_dir),
            "-l",
            str(config.log_file),
            "-o",
            f"-p {config.port}",
            "-w",
            "-t",
            str(START_TIMEOUT_S),
        ],
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(
            f"the cluster did not start (see {config.log_file}): {result.stderr.strip()}"
        )


def _wait_for_connections(config: ClusterConfig) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(_conninfo(config, "postgres")):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ClusterError(f"the cluster does not accept connections: {exc}") from exc
            time.sleep(0.2)


def _check_name(name: str) -> None:
    if not _DB_NAME.match(name):
        raise ClusterError(f"invalid database name {name!r}: lower-case letters, digits, _")


def _create_database_if_missing(config: ClusterConfig, name: str) -> None:
    _check_name(name)
    with psycopg.connect(_conninfo(config, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(_conninfo(config, name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def ensure_running(config: ClusterConfig) -> str:
    """Initialise (first time), start (if stopped) and return the project database URL."""
    with _locked(config):
        if not _initialised(config):
            _initdb(config)
        if _pid(config) is None:
            _start(config)
        _wait_for_connections(config)
        _create_database_if_missing(config, config.database)
    return url(config)


def stop(config: ClusterConfig) -> bool:
    """Stop the cluster; False if it was not running."""
    with _locked(config):
        if not _initialised(config) or _pid(config) is None:
            return False
        _run(config, "pg_ctl", ["stop", "-D", str(config.data_dir), "-m", "fast", "-w"])
        return True


def status(config: ClusterConfig) -> ClusterStatus:
    """Whether the cluster exists and runs, and where."""
    initialised = _initialised(config)
    pid = _pid(config) if initialised else None
    return ClusterStatus(
        initialised=initialised,
        running=pid is not None,
        port=config.port,
        data_dir=config.data_dir,
        pid=pid,
        url=url(config).replace(_password(config), "***") if initialised else None,
    )


def create_database(config: ClusterConfig, name: str) -> str:
    """Create a database with PostGIS on the running cluster; its URL."""
    _create_database_if_missing(config, name)
    return url(config, name)


def drop_database(config: ClusterConfig, name: str) -> None:
    """Drop a database, disconnecting whoever is still on it."""
    _check_name(name)
    with psycopg.connect(_conninfo(config, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
