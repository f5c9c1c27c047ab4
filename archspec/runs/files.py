"""Writing inside a run folder: every file written whole (a temporary file renamed over
the old one) or appended and fsynced, and never through a symbolic link."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from pathlib import Path

from archspec.errors import ArchspecError


class RunFolderError(ArchspecError):
    """A run folder that cannot be used as asked (exit 1)."""

    exit_code = 1


class DiskFullError(RunFolderError):
    """A write that failed for want of space (ENOSPC, or EFBIG past a file-size limit)."""

    def __init__(self, path):
        run = next((p for p in Path(path).parents if (p / "config.yaml").is_file()), None)
        super().__init__(f"no space left on device writing {path}",
                         "the checkpoints committed before it are intact: free some space, then "
                         f"continue with `archspec train --resume {run or 'RUN'}`")


DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def write_error(path, exc: OSError, hint: str = "check free disk space and permissions"):
    """The error to raise for a failed write of `path`: a full disk says so in one line."""
    if exc.errno in DISK_FULL:
        return DiskFullError(path)
    return RunFolderError(f"cannot write {path}: {exc.strerror or exc}", hint)


RUN_FILES = ("config.yaml", "architecture.yaml", "env.json", "sources.json", "metrics.jsonl",
             "attempts.json", "best.json", "train.log", "run.lock", "checkpoints",
             "checkpoints/latest", "checkpoints/best", "events")
LINK_HINT = "a run folder holds its own files: replace the link with the file it points to"


def refuse_link(path: Path) -> None:
    """Files of a run are never written through a symbolic link: the link's target (a file
    of another run, or anything else) would be overwritten. A link to a device (/dev/null,
    /dev/full) overwrites nothing and is let through."""
    path = Path(path)
    if not path.is_symlink():
        return
    try:
        if stat.S_ISCHR(os.stat(path).st_mode):
            return
    except OSError:
        pass
    raise RunFolderError(f"refusing to write {path}: it is a symbolic link (to "
                   f"{os.readlink(path)})", LINK_HINT)


def refuse_links(run_dir: Path) -> None:
    """Every file and folder training writes in `run_dir`, checked before it starts."""
    for name in RUN_FILES:
        refuse_link(Path(run_dir) / name)


def _is_device_link(path: Path) -> bool:
    try:
        return path.is_symlink() and stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def write_text(path: Path, text: str, hint: str = "check free disk space and permissions") -> None:
    """Write a run file whole: a temporary file beside it, fsynced, renamed over it (a kill
    leaves the old or the new content, never half), never through a symbolic link."""
    path = Path(path)
    refuse_link(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if _is_device_link(path):
            with open(path, "w") as f:
                f.write(text)
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise write_error(path, exc, hint) from None


def write_json(path: Path, value, hint: str = "check free disk space and permissions") -> None:
    write_text(path, json.dumps(value, indent=2), hint)


def append_line(path: Path, line: str, hint: str) -> None:
    """Append one line, flushed and fsynced, never through a symbolic link."""
    path = Path(path)
    refuse_link(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (0 if _is_device_link(path) else _NOFOLLOW)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a link after the check
            raise RunFolderError(f"refusing to write {path}: it is a symbolic link", LINK_HINT) from None
        raise write_error(path, exc, hint) from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise write_error(path, exc, hint) from None


def open_append(path: Path, hint: str = "check free disk space and permissions"):
    """A text file opened for appending (line-buffered), never through a symbolic link."""
    path = Path(path)
    refuse_link(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT |
                     (0 if _is_device_link(path) else _NOFOLLOW), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunFolderError(f"refusing to write {path}: it is a symbolic link", LINK_HINT) from None
        raise write_error(path, exc, hint) from None
    return os.fdopen(fd, "a", encoding="utf-8", buffering=1)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


MAX_JSON = 16 * 2**20  # attempts.json, best.json, env.json: a few kilobytes each


def read_json(path: Path):
    """The JSON in `path`; None when absent; a `Damaged` (saying why) when unreadable: a
    FIFO or device is never waited on, a file over MAX_JSON never read whole."""
    from archspec.reading import UnreadableFile, read_bytes

    try:
        text = read_bytes(path, MAX_JSON, "the file", exit_code=1).decode("utf-8")
    except UnreadableFile as exc:
        return None if exc.missing else Damaged(exc.message)
    except UnicodeDecodeError:
        return Damaged("not UTF-8 text")
    try:
        return json.loads(text)
    except ValueError as exc:
        return Damaged("not JSON: " + str(exc).splitlines()[0] if text.strip() else "empty")


class Damaged:
    def __init__(self, why: str):
        self.why = why
