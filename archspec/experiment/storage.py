"""Where a sweep's study lives, and the locks that make claiming a trial atomic.

- The default: an Optuna journal file in the sweep folder (`<output>/<name>/study.journal`):
  nothing to install, and it works on NFS (Optuna locks it with a lock file).
- `--storage postgresql://user@host/db`: one study shared by workers on any machines.
- `--storage sqlite:///path.db`: one machine only; refused on a network file system, where
  SQLite's locking is unreliable ("database is locked", or worse, a damaged file).

A worker holds a trial with a lock that dies with its process: a PostgreSQL session
advisory lock (the server drops it when the connection closes; TCP keepalives notice a
vanished machine within about a minute), or an flock on a file in the sweep folder (the
kernel drops it when the process dies). So a killed worker's trial is free at once, and a
live one's is never taken: no heartbeat to tune, no false failures. The same locks make
the budget check and the draw of a new trial one step (`critical`)."""
from __future__ import annotations

import fcntl
import os
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from archspec.errors import UsageError

JOURNAL = "study.journal"
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "lustre", "gpfs",
              "beegfs", "ceph", "fuse.ceph", "glusterfs", "fuse.glusterfs", "9p", "afs")
SCHEMES = ("postgresql", "sqlite", "mysql")


@dataclass(frozen=True)
class Place:
    kind: str                 # journal, sqlite or postgresql
    url: str | None = None    # the database URL (postgresql, sqlite)
    path: Path | None = None  # the journal or SQLite file

    def describe(self) -> str:
        """The place as shown: a URL without its password."""
        if self.kind == "journal":
            return str(self.path)
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)


def place_of(storage: str | None, folder: Path) -> Place:
    """--storage (a database URL or a journal file path), or the sweep folder's journal."""
    if not storage:
        return Place("journal", path=Path(folder) / JOURNAL)
    scheme = storage.partition(":")[0].partition("+")[0] if "://" in storage else None
    if scheme is None:
        return Place("journal", path=Path(storage))
    if scheme not in SCHEMES:
        raise UsageError(f"unknown storage '{scheme}://'",
                         "use postgresql://user@host/database, sqlite:///file.db, or a journal "
                         "file path (default: study.journal in the sweep folder)")
    if scheme == "mysql":
        raise UsageError("MySQL storage is not supported yet",
                         "use postgresql://user@host/database, or the default journal file")
    if scheme == "postgresql":
        return Place("postgresql", url=storage)
    path = Path(storage.split(":///", 1)[1]) if ":///" in storage else None
    if path is None or not str(path):
        raise UsageError(f"'{storage}' names no file", "write sqlite:///path/to/study.db")
    fs = filesystem_type(path.parent if not path.exists() else path)
    if fs in NETWORK_FS:
        raise UsageError(f"SQLite on a network file system ({fs}: {path}) is not safe",
                         "its file locks are unreliable there: use the default journal file "
                         "(it works on NFS), or --storage postgresql://...")
    return Place("sqlite", url=storage, path=path)


def filesystem_type(path: Path, mounts: str = "/proc/mounts") -> str:
    """The type of the file system holding `path` (from /proc/mounts; "" when unknown)."""
    target, best, kind = str(Path(path).resolve()), -1, ""
    try:
        lines = Path(mounts).read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > best:
            best, kind = len(mount), parts[2]
    return kind


def open_storage(place: Place):
    """The Optuna storage of a place."""
    import optuna

    if place.kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        place.path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(place.path)))
    # few connections per worker: many workers must not exhaust the server's
    kwargs = {"pool_size": 1, "max_overflow": 2, "pool_pre_ping": True} \
        if place.kind == "postgresql" else {"connect_args": {"timeout": 60}}
    return optuna.storages.RDBStorage(place.url, engine_kwargs=kwargs)


def locks_for(place: Place, folder: Path, study: str):
    return PgLocks(place.url, study) if place.kind == "postgresql" else FileLocks(folder)


class FileLocks:
    """flock-ed files in `<sweep folder>/.locks/`: one per trial, one for the study."""

    def __init__(self, folder: Path):
        self.dir = Path(folder) / ".locks"
        self.held: dict[int, int] = {}   # trial number -> file descriptor

    def _open(self, name: str) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        return os.open(self.dir / name, os.O_RDWR | os.O_CREAT, 0o644)

    @contextmanager
    def critical(self):
        fd = self._open("study.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)   # closing drops the lock

    def try_claim(self, number: int) -> bool:
        fd = self._open(f"trial-{number}.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.held[number] = fd
        return True

    def holds(self, number: int) -> bool:
        return number in self.held

    def release(self, number: int) -> None:
        fd = self.held.pop(number, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for number in list(self.held):
            self.release(number)


class PgLocks:
    """PostgreSQL session advisory locks on one connection of this worker's own: keyed by
    (the study name's CRC, the trial number); -1 is the study's critical section."""

    def __init__(self, url: str, study: str):
        import sqlalchemy

        self.key = zlib.crc32(study.encode()) - 2**31   # a signed 32-bit key
        # keepalives: the server drops a vanished machine's locks within about a minute
        engine = sqlalchemy.create_engine(
            url, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT",
            connect_args={"keepalives": 1, "keepalives_idle": 20, "keepalives_interval": 10,
                          "keepalives_count": 3, "application_name": "archspec sweep"})
        self.conn = engine.connect()
        self.conn.exec_driver_sql("SET tcp_keepalives_idle = 20; SET tcp_keepalives_interval = 10;"
                                  " SET tcp_keepalives_count = 3")
        self.held: set[int] = set()

    def _select(self, what: str, number: int):
        return self.conn.exec_driver_sql(f"SELECT {what}(%s, %s)", (self.key, number)).scalar()

    @contextmanager
    def critical(self):
        self._select("pg_advisory_lock", -1)
        try:
            yield
        finally:
            self._select("pg_advisory_unlock", -1)

    def try_claim(self, number: int) -> bool:
        if self._select("pg_try_advisory_lock", number):
            self.held.add(number)
            return True
        return False

    def holds(self, number: int) -> bool:
        """Whether this worker still holds the trial (False when its connection was lost)."""
        try:
            return bool(self.conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                "pid = pg_backend_pid() AND classid = %s::oid AND objid = %s::oid",
                (self.key & 0xFFFFFFFF, number & 0xFFFFFFFF)).scalar())
        except Exception:  # noqa: BLE001 - a lost connection holds nothing
            return False

    def release(self, number: int) -> None:
        if number in self.held:
            self.held.discard(number)
            try:
                self._select("pg_advisory_unlock", number)
            except Exception:  # noqa: BLE001 - a lost connection released it already
                pass

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


__all__ = ["Place", "place_of", "open_storage", "locks_for", "FileLocks", "PgLocks",
           "filesystem_type", "JOURNAL"]
