"""`archspec sweep` of a search (`search:` other than grid, or --worker/--workers/--storage):
an Optuna study that workers share. This process is one worker (`--worker`, or a search
without flags), or starts N local ones (`--workers N`); `--summary` reads the study."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from archspec.commands import BadParameter, Exit
from archspec.errors import UsageError


def study_sweep(sw, file: Path, point: Optional[int], parallel_hint: bool, summary_only: bool,
                output: Optional[str], worker: bool, workers: Optional[int],
                storage: Optional[str]) -> None:
    from archspec.experiment.storage import place_of
    from archspec.experiment.study import open_study
    from archspec.experiment.sweep import check_points, objective
    from archspec.ui.render import console

    if point is not None:
        raise BadParameter("--point runs one point of a grid without a study; a study's "
                           "workers claim trials themselves: use --worker or --workers N",
                           param_hint="--point")
    if worker and workers:
        raise BadParameter("--worker is this process; --workers N starts N: use one",
                           param_hint="--workers")
    from archspec.engine.distributed import is_multi_host

    if is_multi_host():
        raise UsageError("a sweep worker trains its trials in one process: trials trained by "
                         "several processes (multi-host) are not supported yet",
                         "start one worker per machine or GPU: archspec sweep FILE --worker "
                         "--storage postgresql://...")
    place = place_of(storage, sw.folder)
    if summary_only:
        show_summary(sw, place, console)
        return
    if parallel_hint:
        for line in hint_lines(sw, file, storage, output):
            console.print(line, style="dim" if line.startswith("#") else None, soft_wrap=True)
        return
    check_points(sw, sw.checked_points())
    metric, direction = objective(sw)
    h = open_study(sw, place, metric, direction)
    console.print(f"[bold]sweep {sw.name}[/bold]: {sw.search.kind} search, {h.budget} trials, "
                  f"{metric} ({direction}), pruner {sw.search.pruner}; study in "
                  f"{place.describe()}; runs in {sw.folder}")
    if workers:
        h.close()
        code = launch(sw, file, workers, storage, output, place, console)
    else:
        code = _work(h, console)
    if not worker:
        console.print()
        show_summary(sw, place, console)
    if code:
        raise Exit(code)


def _work(h, console) -> int:
    from archspec.engine.compile_cache import enable_compilation_cache
    from archspec.train.trials import work
    from archspec.ui.progress import RichReporter

    enable_compilation_cache()   # trials of one experiment share most programs
    try:
        tally = work(h, RichReporter(console, summary=False), console.print)
    finally:
        h.close()
    done = ", ".join(f"{n} {what}" for what, n in sorted(tally.items())) or "nothing to do"
    console.print(f"this worker: {done}")
    return 130 if tally.get("stopped") else 0


def launch(sw, file: Path, n: int, storage, output, place, console) -> int:
    """N worker processes of this sweep, each with its share of the GPUs; their output goes
    to <sweep folder>/workers/worker-<k>.log. Ctrl-C stops each at a step boundary (its
    trial is resumed by the next worker to run)."""
    logs = sw.folder / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "archspec", "sweep", str(file), "--worker",
           *(["--storage", storage] if storage else []), *(["--output", output] if output else [])]
    procs = []
    for k, devices in enumerate(split_devices(n)):
        env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": devices} if devices else {})}
        log = open(logs / f"worker-{k}.log", "w")
        procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
        console.print(f"worker {k}: pid {procs[-1][0].pid}" +
                      (f", CUDA_VISIBLE_DEVICES={devices}" if devices else "") +
                      f", output in {logs / f'worker-{k}.log'}")
    try:
        _follow(sw, place, procs, console)
    except KeyboardInterrupt:   # the terminal sent SIGINT to the workers too: let them stop
        console.print("stopping the workers at their next step boundary ...")
    codes = [p.wait() for p, _ in procs]
    for _, log in procs:
        log.close()
    for k, code in enumerate(codes):
        if code:
            console.print(f"worker {k} exited with {code}: see {logs / f'worker-{k}.log'}")
    return max(codes)


def _follow(sw, place, procs, console, every: float = 5.0) -> None:
    """A line whenever the study's counts change, until every worker has exited."""
    from archspec.experiment.study import load_study
    from archspec.ui.study_table import state_counts

    last = None
    while any(p.poll() is None for p, _ in procs):
        time.sleep(every)
        study = load_study(sw.name, place)
        counts = state_counts(study.get_trials(deepcopy=False)) if study is not None else ""
        if counts and counts != last:
            console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {counts}")
            last = counts


def split_devices(n: int) -> list[str | None]:
    """Worker k's CUDA_VISIBLE_DEVICES: the visible GPUs shared out, D // N each when there
    are at least as many as workers, else round robin; None without GPUs (CPU)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in visible.split(",") if d.strip()] if visible else _nvidia_ids()
    if not ids:
        return [None] * n
    if len(ids) >= n:
        per = len(ids) // n
        return [",".join(ids[k * per:(k + 1) * per]) for k in range(n)]
    return [ids[k % len(ids)] for k in range(n)]


def _nvidia_ids() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def show_summary(sw, place, console) -> None:
    from archspec.experiment.study import load_study
    from archspec.ui.study_table import study_tables

    study = load_study(sw.name, place)
    if study is None:
        console.print(f"no study '{sw.name}' in {place.describe()} yet: "
                      f"run archspec sweep {sw.source} (--worker, --workers N)")
        return
    for part in study_tables(study, sw, place):
        console.print(part)


def hint_lines(sw, file: Path, storage, output) -> list[str]:
    out = (f" --output {output}" if output else "")
    shared = storage if storage and storage.startswith("postgresql") else \
        "postgresql://USER@HOST/DATABASE"
    return [
        f"# a {sw.search.kind} search of {sw.search.trials or len(sw.points())} trials: any "
        "number of workers share its study, each claiming trials until the budget is spent",
        f"archspec sweep {file}{out} --workers 4",
        f"parallel -j 4 -N0 archspec sweep {file}{out} --worker ::: 1 2 3 4",
        f"sbatch --array=0-3 --wrap 'archspec sweep {file}{out} --worker --storage {shared}'",
        f"# then the table: archspec sweep {file}{out} --summary"
        + (f" --storage {storage}" if storage else ""),
    ]
