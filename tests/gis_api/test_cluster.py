"""The project-managed cluster, exercised on a second, throwaway cluster.

The suite's own cluster is already running; these tests build another one in
a temporary state directory on another port, so they see a first initdb.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from gis_api import cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def fresh() -> Iterator[cluster.ClusterConfig]:
    # Under /tmp (not pytest's 0700 tmp_path): the postgres user must reach it when we are root.
    state = Path(tempfile.mkdtemp(prefix="civic-gis-cluster-test-"))
    state.chmod(0o755)
    config = cluster.ClusterConfig(state_dir=state, port=_free_port())
    yield config
    cluster.stop(config)
    shutil.rmtree(state, ignore_errors=True)


def test_a_first_db_up_creates_a_cluster_with_postgis_that_only_listens_on_loopback(
    fresh: cluster.ClusterConfig,
) -> None:
    assert not cluster.status(fresh).initialised
    url = cluster.ensure_running(fresh)
    state = cluster.status(fresh)
    assert state.initialised and state.running and state.pid
    assert state.url is not None and "***" in state.url
    with create_engine(url).connect() as conn:
        assert conn.execute(text("SELECT postgis_lib_version()")).scalar()
        assert conn.execute(text("SHOW listen_addresses")).scalar() == "127.0.0.1"
        assert conn.execute(text("SHOW unix_socket_directories")).scalar() == ""
    mode = stat.S_IMODE(fresh.password_file.stat().st_mode)
    assert mode == 0o600


def test_the_cluster_refuses_a_wrong_password(fresh: cluster.ClusterConfig) -> None:
    cluster.ensure_running(fresh)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host="127.0.0.1", port=fresh.port, user=fresh.user, password="guess", dbname="postgres"
        )


def test_db_up_twice_reuses_the_running_cluster(fresh: cluster.ClusterConfig) -> None:
    cluster.ensure_running(fresh)
    pid = cluster.status(fresh).pid
    cluster.ensure_running(fresh)
    assert cluster.status(fresh).pid == pid


def test_a_stopped_cluster_starts_again_with_its_data(fresh: cluster.ClusterConfig) -> None:
    url = cluster.ensure_running(fresh)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS kept (n int)"))
        conn.execute(text("INSERT INTO kept VALUES (7)"))
    engine.dispose()
    assert cluster.stop(fresh) is True
    assert cluster.stop(fresh) is False
    assert not cluster.status(fresh).running
    engine = create_engine(cluster.ensure_running(fresh))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(n) FROM kept")).scalar() == 7
    engine.dispose()


def test_databases_are_created_with_postgis_and_dropped(fresh: cluster.ClusterConfig) -> None:
    cluster.ensure_running(fresh)
    url = cluster.create_database(fresh, "scratch_one")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT ST_AsText(ST_Point(1, 2))")).scalar() == "POINT(1 2)"
    cluster.drop_database(fresh, "scratch_one")  # even with a connection still open
    engine.dispose()
    with pytest.raises(cluster.ClusterError, match="invalid database name"):
        cluster.create_database(fresh, "x; DROP DATABASE civic_gis")


def test_a_port_taken_by_another_program_is_named(tmp_path_factory: pytest.TempPathFactory) -> None:
    state = Path(tempfile.mkdtemp(prefix="civic-gis-cluster-port-"))
    state.chmod(0o755)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        config = cluster.ClusterConfig(state_dir=state, port=squatter.getsockname()[1])
        try:
            with pytest.raises(cluster.ClusterError, match=f"port {config.port} .* is taken"):
                cluster.ensure_running(config)
        finally:
            shutil.rmtree(state, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as 'postgres'")
def test_as_root_a_state_dir_postgres_cannot_reach_is_refused_with_advice() -> None:
    hidden = Path(tempfile.mkdtemp(prefix="civic-gis-hidden-"))  # 0700, owned by root
    try:
        config = cluster.ClusterConfig(state_dir=hidden / "state", port=_free_port())
        with pytest.raises(cluster.ClusterError, match="CIVIC_GIS_STATE_DIR"):
            cluster.ensure_running(config)
    finally:
        shutil.rmtree(hidden, ignore_errors=True)
