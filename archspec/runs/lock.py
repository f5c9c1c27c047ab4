"""The owner of a run folder. One process at a time trains in a run folder: it holds an
advisory lock (flock) on `run.lock` inside the folder for as long as it trains. The operating
system releases the lock when the process ends, however it ends (kill -9 included), so no
lock is ever left behind; the file stays, naming its last holder. A second process on the
same folder (`train --resume RUN` twice, `sweep FILE --point K` twice) refuses with exit 1,
naming the holder's pid and host, or waits for it (`--wait`).

The lock is advisory and local: processes that do not take it (another tool) are not
stopped, and on a network file system flock may not reach other hosts."""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from archspec.runs.files import RunFolderError, refuse_link, write_error

LOCK_NAME = "run.lock"
HINT = ("one process trains in a run folder at a time: wait for it to end, or add --wait "
        "to start when it does")

_HELD: dict[str, list] = {}  # real path -> [fd, count]: re-entrant within this process


@contextlib.contextmanager
def owning(run_dir: Path, wait: bool = False, say=None):
    """Hold `run_dir`'s lock for the `with` block. Within one process it is re-entrant (a
    sweep point holds it, then trains in it). In a multi-process launch only process 0
    takes it: the others share the folder by design (runs/folder.py)."""
    from archspec.engine.distributed import is_primary

    key = os.path.realpath(run_dir)
    if key in _HELD or not is_primary():
        if key in _HELD:
            _HELD[key][1] += 1
        try:
            yield
        finally:
            _release(key)
        return
    _HELD[key] = [_acquire(Path(run_dir), wait, say), 1]
    try:
        yield
    finally:
        _release(key)


def _acquire(run_dir: Path, wait: bool, say) -> int:
    path = run_dir / LOCK_NAME
    refuse_link(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        if not _try_lock(fd):
            who = _describe(path)
            if not wait:
                raise RunFolderError(f"{run_dir} is in use: {who} is training in it", HINT)
            if say is not None:
                say(f"waiting for {who} to finish with {run_dir}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        _write_holder(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _write_holder(fd: int, path: Path) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": dt.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join(["archspec", *sys.argv[1:]])[:500]}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        os.fsync(fd)
    except OSError as exc:
        raise write_error(path, exc) from None


def _describe(path: Path) -> str:
    """The holder named in the lock file. It writes its name just after taking the lock,
    so an empty file is read again for a moment."""
    for _ in range(20):
        try:
            with open(path, "rb") as f:
                text = f.read(4096).decode("utf-8", "replace")
        except OSError:
            text = ""
        try:
            info = json.loads(text)
            return (f"process {int(info['pid'])} on host {str(info['host'])[:100]} (since "
                    f"{str(info.get('since', '?'))[:40]})")
        except (ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "another process"


def _release(key: str) -> None:
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] <= 0:
        del _HELD[key]
        os.close(held[0])  # closing the only descriptor releases the flock


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
