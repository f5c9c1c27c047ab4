"""Arrays that cost seconds to make and never change for the same inputs (a generated data
set; a streamed folder's header check and normalisation statistics, keyed by its `listing`),
kept on disk so that every later run, resume and sweep point reads them instead.

The folder: $ARCHSPEC_DATA_CACHE_DIR, else $XDG_CACHE_HOME/archspec/data (~/.cache/...).
ARCHSPEC_NO_DATA_CACHE=1 turns it off. An entry is named by a hash of everything that
decides its content (the caller's key, which names the generator's version), is written
to a temporary file and renamed, so a reader sees a whole entry or none; an entry that
cannot be read is made again. The cache only saves time: it never changes a result."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from archspec import cachedirs
from archspec.cachedirs import switched_off

ENV_FOLDER = "ARCHSPEC_DATA_CACHE_DIR"
ENV_OFF = "ARCHSPEC_NO_DATA_CACHE"


def folder() -> Path | None:
    return None if switched_off(ENV_OFF) else cachedirs.folder(ENV_FOLDER, "data")


def cached_arrays(name: str, key: dict, make: Callable[[], dict]) -> dict:
    """`make()`'s dict of arrays, read from the cache when an entry for (name, key) is
    there, else made and written to it."""
    where = folder()
    if where is None:
        return make()
    digest = hashlib.sha256(json.dumps([name, key], sort_keys=True).encode()).hexdigest()
    path = where / f"{name}-{digest[:20]}.npz"
    found = _read(path)
    if found is not None:
        return found
    arrays = make()
    _write(path, arrays)
    return arrays


def listing(paths) -> str | None:
    """A digest of files' names, sizes and modification times, in order: what a result
    read from them is keyed by (a file changed, added or removed gives another key). None
    when one cannot be read: nothing is cached then."""
    digest = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
        except (OSError, TypeError, ValueError):
            return None
        digest.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _read(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # absent or cut short
        return None


def _write(path: Path, arrays: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:  # a read-only or full disk: the run goes on without the cache
        pass
