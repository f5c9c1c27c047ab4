"""The one way archspec opens a file to read it: never blocks, never reads without bound.

A path is opened with O_NONBLOCK (opening a FIFO for reading waits for a writer otherwise)
and checked with fstat on the open descriptor (so a file swapped after a stat cannot slip
through); anything but a regular file is refused, a link to one is fine. Reads are capped:
/dev/zero or a 100 GB file named as a 1 KB metrics log is refused, not read into memory."""
from __future__ import annotations

import os
import stat

from archspec.errors import ArchspecError

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISDIR, "a folder"))
SPECIAL_HINT = "give a file on disk; copy data from a pipe or device into a file first"


class UnreadableFile(ArchspecError):
    """A file archspec will not read: absent (`missing`), not a regular file, too large,
    not text. It names the file (`file`), never any of its content."""

    def __init__(self, message: str, file, hint: str | None = None, *, exit_code: int = 2,
                 missing: bool = False):
        super().__init__(message, hint)
        self.file, self.missing = str(file), missing
        self.exit_code = exit_code  # 2: a file the user gave; 1: a file of a run


def kind_of_mode(mode: int) -> str:
    """'a FIFO', 'a folder', ... for a mode that is not a regular file's."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def open_regular(path, what: str = "file", *, exit_code: int = 2):
    """`path` opened for binary reading, if it is a regular file (after links)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UnreadableFile(f"{what} not found", path, exit_code=exit_code,
                             missing=True) from None
    except IsADirectoryError:
        raise UnreadableFile(f"{what} is not a regular file (a folder)", path,
                             exit_code=exit_code) from None
    except OSError as exc:
        raise UnreadableFile(f"cannot open {what}: {exc.strerror or exc}", path,
                             exit_code=exit_code) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(f"{what} is not a regular file ({kind_of_mode(mode)})", path,
                                 SPECIAL_HINT, exit_code=exit_code)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path, limit: int, what: str = "file", *, exit_code: int = 2) -> bytes:
    """The whole content of a regular file of at most `limit` bytes."""
    with open_regular(path, what, exit_code=exit_code) as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise UnreadableFile(f"cannot read {what}: {exc.strerror or exc}", path,
                                 exit_code=exit_code) from None
    if len(data) > limit:
        raise UnreadableFile(f"{what} is larger than {size_text(limit)}; refusing to read it",
                             path, "is this the right file?", exit_code=exit_code)
    return data


def read_text(path, limit: int, what: str = "file", *, exit_code: int = 2) -> str:
    """The content of a regular UTF-8 text file of at most `limit` bytes. A file that is not
    UTF-8 text is refused without quoting any of it (it may be a key or an environment)."""
    data = read_bytes(path, limit, what, exit_code=exit_code)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"{what} is not UTF-8 text (an undecodable byte at offset {exc.start:,}); its "
            "content is not shown", path, "is this the right file? a binary file is never "
            "a YAML or JSON file", exit_code=exit_code) from None


def size_text(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"
