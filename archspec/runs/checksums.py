"""The sha256 list of a checkpoint step (`<step>/archspec.sha256`): every file of the step
but orbax's own commit records, written whole (a temporary file renamed) into the step's
temporary folder before orbax renames it (runs/checkpoint.py), and checked before a restore.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

MANIFEST = "archspec.sha256"
# Step-level records orbax writes while it commits (after the list): not in the list.
ORBAX_COMMIT_FILES = ("_CHECKPOINT_METADATA", "commit_success.txt")


def write_manifest(step_dir: Path) -> None:
    """sha256 of every file of a finished checkpoint step, written whole (temporary + rename)."""
    step_dir = Path(step_dir)
    if not step_dir.is_dir():
        return
    lines = [f"{_sha256(f)}  {f.relative_to(step_dir).as_posix()}\n" for f in _files(step_dir)]
    tmp = step_dir / f".{MANIFEST}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "w") as f:
        f.write("".join(lines))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, step_dir / MANIFEST)


def verify(step_dir: Path) -> str | None:
    """What is wrong with a checkpoint step's files against its checksum list (None: they
    match). A step without a list is not verified, so never trusted."""
    step_dir = Path(step_dir)
    manifest = step_dir / MANIFEST
    if not manifest.is_file():
        return "it has no checksum list, so it cannot be verified"
    try:
        text = manifest.read_bytes().decode("utf-8")
        listed = dict(reversed(line.split("  ", 1)) for line in text.splitlines() if line)
    except (OSError, UnicodeDecodeError, ValueError):
        return "its checksum list is damaged"
    if not listed or not all(len(h) == 64 for h in listed.values()):
        return "its checksum list is damaged"
    for name, digest in sorted(listed.items()):
        f = step_dir / name
        if not f.is_file():
            return f"file {name} is missing"
        if _sha256(f) != digest:
            return f"file {name} does not match its checksum"
    return None


def _files(step_dir: Path) -> list[Path]:
    skip = (MANIFEST, f".{MANIFEST}.tmp", *ORBAX_COMMIT_FILES)
    return sorted(f for f in step_dir.rglob("*") if f.is_file() and not f.is_symlink()
                  and f.relative_to(step_dir).as_posix() not in skip)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
