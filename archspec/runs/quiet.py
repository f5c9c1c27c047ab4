"""Keeping orbax's background noise off the terminal when a checkpoint write fails.

A write that fails in orbax's background thread (a full disk) surfaces in archspec as one
error (runs/checkpoint.py). Orbax's other unfinished tasks report their own copies of it:
TensorStore's callbacks into an event loop orbax has already closed ("RuntimeError: Event
loop is closed", reported as unraisable), asyncio's "Task exception was never retrieved" and
"Task was destroyed but it is pending", and "Exception ignored in <coroutine ...>" as the
interpreter exits. None of them says more than the one error, so they are dropped; every
other report goes where it went before."""
from __future__ import annotations

import logging
import sys
import traceback

_STATE = {"installed": False, "failed": False}


def install() -> None:
    """With the first writing checkpoint manager."""
    if _STATE["installed"]:
        return
    _STATE["installed"] = True
    previous = sys.unraisablehook

    def hook(unraisable):
        if not _orbax_leftover(unraisable):
            previous(unraisable)

    sys.unraisablehook = hook


def after_failed_write() -> None:
    """The run is ending with the write's error: orbax's leftover tasks stay quiet."""
    _STATE["failed"] = True
    logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)


def _orbax_leftover(unraisable) -> bool:
    if unraisable.exc_type is RuntimeError and str(unraisable.exc_value) == \
            "Event loop is closed":  # a task finishing after its loop was closed
        return True
    if not _STATE["failed"]:
        return False
    where = repr(unraisable.object) + "".join(traceback.format_tb(unraisable.exc_traceback))
    return "orbax" in where or "tensorstore" in where
