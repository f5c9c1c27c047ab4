"""Running one point of a sweep: train it, resume it, or skip it when it is done. The point's
folder is owned (runs/lock.py) before its state is read, so a second process on the same
point (a requeued or resubmitted array task) refuses or waits, and never removes or resumes
a folder another process is training in."""
from __future__ import annotations

import shutil

from archspec.experiment.sweep import DONE, Point, Sweep, point_status
from archspec.runs.checkpoint import has_checkpoint
from archspec.runs.lock import LOCK_NAME, owning


def run_point(sweep: Sweep, point: Point, reporter=None, wait: bool = False, on_epoch=None):
    """Train one point (or resume it); returns (what happened, fit Result or None).
    `on_epoch`: fit's hook (a study trial's reports and pruning)."""
    from archspec.engine.reporter import ignore
    from archspec.runs.files import RunFolderError, refuse_links

    run_dir = sweep.point_dir(point)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create the run folder {run_dir}: {exc.strerror or exc}",
                             "choose a writable folder with --output DIR") from None
    refuse_links(run_dir)  # before anything is written, the lock file included
    say = reporter.training_warning if reporter is not None else ignore
    with owning(run_dir, wait, say):
        return _run_owned(sweep, point, run_dir, reporter, on_epoch)


def _run_owned(sweep: Sweep, point: Point, run_dir, reporter, on_epoch=None):
    from archspec.engine.reporter import ignore
    from archspec.experiment import load as experiment
    from archspec.runs.sources import write_setup
    from archspec.train.loop import fit
    from archspec.train.setup import prepare_loaded

    status = point_status(run_dir)
    if status in DONE:
        return "skipped", None
    warn = reporter.warning if reporter is not None else ignore
    if status is not None and has_checkpoint(run_dir) and (run_dir / "config.yaml").exists():
        loaded = experiment.load(resume=run_dir, warn=warn)
        setup = prepare_loaded(loaded)
        return "resumed", fit(setup, reporter, run_dir=run_dir, resume=True, on_epoch=on_epoch)
    _clear(run_dir)               # started but nothing to resume from: start over
    loaded = experiment.load(sweep.experiment, point.set_args())
    setup = prepare_loaded(loaded)
    write_setup(run_dir, setup.config, setup.arch_text, loaded.exp.seed)
    return "trained", fit(setup, reporter, run_dir=run_dir, on_epoch=on_epoch)


def _clear(run_dir) -> None:
    """Everything in the folder but its lock, which this process holds: removing the lock
    file would let another process lock a new one beside it."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
