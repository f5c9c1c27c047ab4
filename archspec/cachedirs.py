"""Where archspec keeps what it can make again (compiled programs, generated data, the
oneDNN build and its convolution choices): $XDG_CACHE_HOME/archspec (~/.cache/archspec),
each kind in a folder of its own that an environment variable may move or turn off."""
from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "archspec"


def folder(env: str, name: str) -> Path:
    """$<env> when set, else cache_home()/<name>."""
    given = os.environ.get(env)
    return Path(given).expanduser() if given else cache_home() / name


def switched_off(env: str) -> bool:
    """True when $<env> is set to anything but "", 0, false or no."""
    return os.environ.get(env, "").strip().lower() not in ("", "0", "false", "no")
