"""Checks that a user's path exists before any format reader opens it."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import DataError

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def require_file(path: str | Path | None, what: str, *, option: str | None = None) -> Path:
    """`path` as a Path, if it names a regular file (a link to one is fine).

    Anything else is refused before it is opened: reading a FIFO would wait for a
    writer forever, and a device never ends."""
    p = _require(path, what, option)
    try:
        mode = p.stat().st_mode
    except OSError:
        mode = None
    if mode is None or stat.S_ISDIR(mode):
        hint = "it is a folder; give the file inside it" if mode is not None else _nearby(p)
        raise DataError(f"{what} not found", file=str(p), hint=hint, option=option)
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise DataError(f"{what} is not a regular file ({kind})", file=str(p), hint=(
            "give a file on disk; copy data from a pipe or device into a file first"),
                        option=option)
    return p


def is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def require_folder(path: str | Path | None, what: str) -> Path:
    p = _require(path, what, None)
    if not p.is_dir():
        hint = "it is a file; give the folder that holds it" if p.exists() else _nearby(p)
        raise DataError(f"{what} not found", file=str(p), hint=hint)
    return p


def _require(path, what, option) -> Path:
    if path is None or str(path) == "":
        where = f"option `{option}`" if option else "`path`"
        raise DataError(f"{what} not given", hint=f"set {where} in the data section",
                        option=option)
    return Path(path).expanduser()


def _nearby(p: Path) -> str | None:
    # A typo in the file name is the usual cause; name what the folder does hold.
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        return f"folder {parent} does not exist either"
    names = sorted(c.name for c in parent.iterdir())[:8]
    return f"{parent} holds: {', '.join(names)}" if names else f"{parent} is empty"
