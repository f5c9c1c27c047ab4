"""Running one point of a sweep: train it, resume it, or skip it when it is done."""
from __future__ import annotations

import shutil

from archspec.experiment.sweep import DONE, Point, Sweep, point_status
from archspec.runs.checkpoint import has_checkpoint


def run_point(sweep: Sweep, point: Point, reporter=None, on_epoch=None):
    """Train one point (or resume it); returns (what happened, fit Result or None).
    `on_epoch`: fit's hook (a study trial's reports and pruning)."""
    from archspec.experiment import load as experiment
    from archspec.train.loop import fit
    from archspec.train.setup import prepare_loaded
    from archspec.engine.reporter import ignore
    from archspec.runs.sources import write_setup

    run_dir = sweep.point_dir(point)
    status = point_status(run_dir)
    if status in DONE:
        return "skipped", None
    warn = reporter.warning if reporter is not None else ignore
    if status is not None and has_checkpoint(run_dir) and (run_dir / "config.yaml").exists():
        loaded = experiment.load(resume=run_dir, warn=warn)
        setup = prepare_loaded(loaded)
        return "resumed", fit(setup, reporter, run_dir=run_dir, resume=True, on_epoch=on_epoch)
    if run_dir.exists():          # started but nothing to resume from: start over
        shutil.rmtree(run_dir)
    loaded = experiment.load(sweep.experiment, point.set_args())
    setup = prepare_loaded(loaded)
    run_dir.mkdir(parents=True)
    write_setup(run_dir, setup.config, setup.arch_text, loaded.exp.seed)
    return "trained", fit(setup, reporter, run_dir=run_dir, on_epoch=on_epoch)
