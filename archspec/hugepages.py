"""Transparent huge pages for the `archspec` command's process (archspec/__main__.py).

XLA:CPU allocates each execution's temporary buffer with malloc. Past glibc's mmap threshold
that is a fresh mapping each step, unmapped at its end, so every 4 KiB page of it faults
again every step: a ResNet-50 train step at batch 8 has a 1.2 GB buffer, 295,000 page faults
and ~0.55 s of kernel time in a 1.6 s step. glibc's tunable `glibc.malloc.hugetlb=1` makes
malloc advise its mappings for transparent huge pages (2 MiB), and the same step has ~1,500
faults and takes 1.38 s (benchmarks/README.md). glibc reads tunables only when a process
starts, so the command adds it to $GLIBC_TUNABLES and re-executes itself once, before
anything heavy is imported. It does so only where it can help (Linux with glibc, transparent
huge pages in `madvise` mode: `always` already gives them, `never` cannot) and not when
$ARCHSPEC_HUGEPAGES is 0/off or the tunable is set already. Library users set the variable
themselves: `GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python train.py`."""
from __future__ import annotations

import os
import re

TUNABLE = "glibc.malloc.hugetlb=1"
ENV = "ARCHSPEC_HUGEPAGES"
THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"
_MARK = "ARCHSPEC_LAUNCHED"  # set in the re-executed process: never a second exec


def hugepage_env(environ, thp_mode: str | None, libc: str) -> dict | None:
    """The environment to re-execute the command with, or None to run as it is."""
    if _MARK in environ or why_not(environ, thp_mode, libc) is not None:
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    return {**environ, _MARK: "1",
            "GLIBC_TUNABLES": f"{tunables}:{TUNABLE}" if tunables else TUNABLE}


def command_env(environ) -> dict | None:
    """hugepage_env for this machine: what the `archspec` command re-executes with."""
    return hugepage_env(environ, thp_mode(), libc())


def why_not(environ, thp_mode: str | None, libc: str) -> str | None:
    """Why the command leaves the tunable out, or None where it adds it."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    if environ.get(ENV, "").strip().lower() in ("0", "off", "false", "no"):
        return f"{ENV}={environ[ENV]}"
    if "glibc.malloc.hugetlb" in tunables:
        return f"GLIBC_TUNABLES={tunables}"  # the user's own choice
    if not knows_tunable(libc):
        return "no glibc 2.35+"
    if thp_mode != "madvise":  # always: the kernel gives them anyway; never: nothing can
        return f"transparent huge pages: {thp_mode or 'unavailable'}"
    return None


def thp_mode() -> str | None:
    """The kernel's transparent-huge-page mode (always, madvise, never), None if unknown."""
    try:
        with open(THP_MODE) as f:
            found = re.search(r"\[(\w+)\]", f.read())
    except OSError:
        return None
    return found.group(1) if found else None


def knows_tunable(libc: str) -> bool:
    """Whether this C library has glibc.malloc.hugetlb (glibc 2.35 and later)."""
    found = re.fullmatch(r"glibc (\d+)\.(\d+).*", libc)
    return bool(found) and (int(found.group(1)), int(found.group(2))) >= (2, 35)


def libc() -> str:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
    except (AttributeError, ValueError, OSError):
        return ""


def describe() -> str:
    """One line: whether this process's malloc mappings get transparent huge pages."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb=1" in tunables or "glibc.malloc.hugetlb=2" in tunables:
        return f"huge pages for malloc's mappings (GLIBC_TUNABLES={tunables})"
    mode = thp_mode()
    if mode == "always":
        return "huge pages (the kernel's transparent huge pages: always)"
    why = why_not(os.environ, mode, libc()) or "not started by the archspec command"
    return f"4 KiB pages ({why})"
