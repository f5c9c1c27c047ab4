"""Run folders: runs/<experiment>/<timestamp>/ with everything needed to reproduce the run.

    config.yaml         the fully resolved experiment (overrides applied), re-runnable from
                        any folder: the architecture is the copy beside it (or inline),
                        data paths are absolute
    architecture.yaml   the architecture text as trained
    sources.json        size and sha256 of the data files (and the experiment file)
    env.json            versions, devices, git commit, seed
    metrics.jsonl       one line per logged step or evaluation
    attempts.json       every attempt (restarts after a collapse or divergence)
    best.json           the best validation score so far
    events/             TensorBoard
    checkpoints/        orbax: latest/ and best/, each step with a sha256 list of its files
    run.lock            the process training in the folder (runs/lock.py)

This module makes the folder of a new run; run_files writes inside it (whole or appended,
never through a symbolic link), sources writes the set-up, records the metrics, attempts
and best score.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from archspec.runs.files import DISK_FULL, DiskFullError, RunFolderError, read_json, write_json


# ---------------------------------------------------------------- the folder of a new run

def name_problem(name) -> str | None:
    """Why `name` cannot be one folder name inside `output` (None: it can)."""
    if not isinstance(name, str) or not name.strip():
        return "is empty"
    if name in (".", ".."):
        return f"is '{name}'"
    if any(sep in name for sep in ("/", "\\", os.sep, os.altsep or "/")):
        return "contains a path separator"
    control = next((c for c in name if ord(c) < 32 or ord(c) == 127), None)
    if control is not None:  # a newline or tab in a folder name breaks every listing of it
        return f"contains a control character ({control!r})"
    return None


NAME_HINT = "letters, digits, '-', '_', '.'; no '/', '\\' or '..'"


def new_run_dir(output: str, experiment: str) -> Path:
    """A new folder output/<experiment>/<timestamp> that no other training uses."""
    shared = os.environ.get("ARCHSPEC_RUN_NAME")
    for what, value in (("the experiment name", experiment), ("ARCHSPEC_RUN_NAME", shared)):
        problem = name_problem(value) if value or what != "ARCHSPEC_RUN_NAME" else None
        if problem:
            raise RunFolderError(f"{what} {value!r} {problem}: a run must stay inside {output}/",
                           f"use one folder name: {NAME_HINT}")
    base = Path(output) / experiment
    if shared:
        return _shared_run_dir(base / shared, shared)
    # Several processes without a shared name: process 0 makes the folder, all use it.
    from archspec.engine.distributed import agree
    return Path(agree(lambda: str(_stamped_run_dir(base))))


def _stamped_run_dir(base: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = base / stamp, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base / f"{stamp}-{n}"
        except OSError as exc:
            raise _create_error(path, exc) from None


def _shared_run_dir(path: Path, shared: str) -> Path:
    # Several processes of one multi-host run must agree on the folder: the launcher sets
    # ARCHSPEC_RUN_NAME for all of them (see README, "Many devices and hosts"). The first
    # to arrive creates it; the others join it only while it holds no training results and
    # was made by the same launch. Anything else is a leftover variable meeting an old run.
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        _check_joinable(path, shared)
        return path
    except OSError as exc:
        raise _create_error(path, exc) from None
    write_json(path / LAUNCH_FILE, {"launch": launch_id(), "processes": _process_count()})
    return path


def _create_error(path: Path, exc: OSError) -> RunFolderError:
    if exc.errno in DISK_FULL:
        return DiskFullError(path)
    return RunFolderError(f"cannot create the run folder {path}: {exc.strerror or exc}",
                          "choose a writable folder with --set output=DIR")


LAUNCH_FILE = "launch.json"


def launch_id() -> str:
    """What the processes of one multi-host launch share (and a later launch does not)."""
    keys = ("ARCHSPEC_LAUNCH_ID", "SLURM_JOB_ID", "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES")
    return "|".join(f"{k}={os.environ[k]}" for k in keys if os.environ.get(k))


def _check_joinable(path: Path, shared: str) -> None:
    refuse = None
    if _process_count() < 2:
        refuse = "already exists"
    elif has_results(path):
        refuse = "already holds training results"
    else:
        marker = read_json(path / LAUNCH_FILE)
        if isinstance(marker, dict) and marker.get("launch") != launch_id():
            refuse = "belongs to another launch"
    if refuse:
        raise RunFolderError(f"the run folder {path} named by ARCHSPEC_RUN_NAME={shared} {refuse}; "
                       "a new training never reuses a run folder",
                       f"unset ARCHSPEC_RUN_NAME (or give a new one) for a new run, or "
                       f"continue that run with `archspec train --resume {path}`")


def has_results(run_dir: Path) -> bool:
    """Whether training has written anything into the folder yet."""
    run_dir = Path(run_dir)
    if any(os.path.lexists(run_dir / n) for n in ("metrics.jsonl", "attempts.json", "best.json")):
        return True
    ckpts = run_dir / "checkpoints"
    return any(p.name.isdigit() for sub in ("latest", "best") if (ckpts / sub).is_dir()
               for p in (ckpts / sub).iterdir())


def _process_count() -> int:
    import jax
    return jax.process_count()
