"""A throwaway PostgreSQL server for the tests that share a study through it: initdb and
pg_ctl (Debian's postgresql 15 on the PATH) in a temporary folder, on a free port. As root,
the server runs as the `postgres` user. In CI (CI=true) a server that cannot start fails the
test loudly; elsewhere the test is skipped with the reason."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is needed in CI and could not start: {reason}")
    pytest.skip(f"no PostgreSQL server: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    """As root, run as `postgres` (initdb refuses root)."""
    if os.geteuid() != 0:
        return cmd
    return ["su", "postgres", "-c", " ".join(f"'{c}'" for c in cmd)]


@pytest.fixture(scope="session")
def postgres_server():
    """postgresql://postgres@127.0.0.1:PORT (trust authentication, fsync off)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        _unavailable("initdb and pg_ctl are not on the PATH (Debian: apt-get install postgresql)")
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no `postgres` user to run the server")
    folder = tempfile.mkdtemp(prefix="archspec-pg-")
    data, port = os.path.join(folder, "data"), _free_port()
    if os.geteuid() == 0:
        os.chown(folder, user.pw_uid, user.pw_gid)
    steps = [[initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
             [pg_ctl, "-D", data, "-l", os.path.join(folder, "server.log"), "-w", "-t", "60",
              "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c max_connections=200", "start"]]
    for cmd in steps:
        r = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, timeout=120)
        if r.returncode:
            log = os.path.join(folder, "server.log")
            tail = open(log).read()[-2000:] if os.path.exists(log) else ""
            shutil.rmtree(folder, ignore_errors=True)
            _unavailable(f"{os.path.basename(cmd[0])} failed: {r.stderr.strip()[-1500:]} {tail}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", data, "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh database on the test server, for one test."""
    import sqlalchemy

    name = "t_" + uuid.uuid4().hex[:12]
    engine = sqlalchemy.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT",
                                      poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"
