"""`archspec train`: an experiment (or an architecture on a built-in data set), from the
first step or resumed, then its result and the exit code of how it ended."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from archspec.commands import BadParameter, Exit
from archspec.commands.options import overrides as flag_overrides
from archspec.commands.options import parse_shape


def train(*, file: Optional[Path], data: Optional[str], epochs: Optional[int],
          steps: Optional[int], batch_size: Optional[int], set_: List[str],
          resume: Optional[Path], smoke: bool, output: Optional[str],
          track: Optional[str], input_shape: Optional[str] = None,
          compile_cache: bool = True, wait: bool = False) -> None:
    from archspec.engine import distributed

    distributed.start()  # before anything touches a device
    if compile_cache:
        from archspec.engine.compile_cache import enable_compilation_cache

        enable_compilation_cache()  # None (nothing cached) when ARCHSPEC_NO_COMPILE_CACHE=1
    from archspec.spec.lint import head_warnings
    from archspec.experiment import load as experiment
    from archspec.train.loop import fit
    from archspec.train.setup import prepare_loaded
    from archspec.ui.progress import RichReporter
    from archspec.ui.render import console, print_warnings

    if track is not None:
        from archspec.train.tracking import check_tracker

        check_tracker(track)
    reporter = RichReporter(console, keep_log=distributed.is_primary())
    if resume is not None:
        if input_shape is not None:
            raise BadParameter("a resumed run keeps the input shape it started with",
                               param_hint="--input-shape")
        _resume(Path(resume), reporter, wait, track, console)
        return
    if wait:
        raise BadParameter("--wait is for --resume RUN: a new run has a folder of its own",
                           param_hint="--wait")
    if file is None:
        raise BadParameter("give an experiment file, or --resume RUN_DIR", param_hint="FILE")
    overrides = flag_overrides(set_, smoke, epochs=epochs, steps=steps, batch_size=batch_size,
                               output=output)
    loaded = experiment.load(file, overrides, data=data, input_shape=parse_shape(input_shape))
    print_warnings(head_warnings(loaded.graph))
    setup = prepare_loaded(loaded, smoke=smoke)
    result = fit(setup, reporter)
    _track(track, result.run_dir, console)
    _exit_for(result.outcome)


def _resume(run_dir: Path, reporter, wait: bool, track, console) -> None:
    """Continue the run in `run_dir`, owning it first (a second process refuses or waits):
    nothing is read to decide, or written, while another process trains in it."""
    from archspec.experiment import load as experiment
    from archspec.runs.checkpoint import finished_step
    from archspec.runs.files import refuse_links
    from archspec.runs.lock import owning
    from archspec.train.loop import fit
    from archspec.train.setup import prepare_loaded

    refuse_links(run_dir)  # no run file, train.log and run.lock included, is a link
    with owning(run_dir, wait, say=console.print):
        setup = prepare_loaded(experiment.load(resume=run_dir, warn=reporter.warning))
        done = finished_step(run_dir, setup)
        if done is not None:
            console.print(f"{run_dir} already finished: all {setup.total_steps} steps done "
                          f"(checkpoint {done}); nothing to resume")
            return
        result = fit(setup, reporter, run_dir=run_dir, resume=True)
    _track(track, result.run_dir, console)
    _exit_for(result.outcome)


def _exit_for(outcome: str) -> None:
    """A run that did not finish never exits 0 (docs/reliability.md lists the codes)."""
    from archspec.train.loop import EXIT_CODES

    code = EXIT_CODES.get(outcome, 1)
    if code:
        raise Exit(code)


def _track(tracker: Optional[str], run_dir: Path, console) -> None:
    if tracker is not None:
        from archspec.train.tracking import log_run

        console.print(f"logged to {tracker}: {log_run(tracker, run_dir)}")
