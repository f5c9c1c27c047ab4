"""Checks that a user's path exists before any format reader opens it."""
from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import numpy as np

from ..reading import UnreadableFile, open_regular
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


def open_file(path: str | Path, what: str, *, option: str | None = None):
    """`path` opened for binary reading: the one way the data package opens a file.

    The check is made on the open descriptor (reading.open_regular), so a file swapped for
    a FIFO or a device after `require_file` or after indexing is refused, not waited on."""
    try:
        return open_regular(path, what)
    except UnreadableFile as exc:
        hint = _nearby(Path(path)) if exc.missing else exc.hint
        raise DataError(exc.message, file=str(path), hint=hint, option=option) from None


def read_npy(path: str | Path, what: str) -> np.ndarray:
    """A .npy array, its header checked before anything is allocated: a 200-byte file can
    declare 4 TB, which NumPy would try to allocate. No Python objects (pickles) are read."""
    import numpy.lib.format as fmt

    with open_file(path, what) as f:
        try:
            version = fmt.read_magic(f)
            shape, _, dtype = (fmt.read_array_header_1_0(f) if version == (1, 0)
                               else fmt.read_array_header_2_0(f))
        except (ValueError, OSError, SyntaxError) as exc:
            raise DataError(f"not a .npy array: {exc}", file=str(path),
                            hint="save it with numpy.save(path, array)") from None
        if dtype.hasobject:
            raise DataError("the array holds Python objects, which are not read",
                            file=str(path), hint="save plain numeric arrays")
        declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        holds = os.fstat(f.fileno()).st_size - f.tell()
        if declared > holds or (dtype.itemsize == 0 and math.prod(shape)):
            raise DataError(f"the header declares {declared:,} bytes ({'x'.join(map(str, shape))} "
                            f"{dtype} values), but the file holds {holds:,} after it",
                            file=str(path), hint="the file is damaged or cut short")
        f.seek(0)
        return fmt.read_array(f, allow_pickle=False)


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
