"""Checks that a user's path exists before any format reader opens it."""
from __future__ import annotations

from pathlib import Path

from .errors import DataError


def require_file(path: str | Path | None, what: str, *, option: str | None = None) -> Path:
    p = _require(path, what, option)
    if not p.is_file():
        hint = "it is a folder; give the file inside it" if p.is_dir() else _nearby(p)
        raise DataError(f"{what} not found", file=str(p), hint=hint, option=option)
    return p


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
