"""`archspec sweep`: an experiment trained at every point of a grid or random search,
resumably; or only the table of points and the commands that run them in parallel."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from archspec.commands import BadParameter

if TYPE_CHECKING:
    from archspec.experiment.sweep import Point, Sweep


def sweep(*, file: Path, point: Optional[int], parallel_hint: bool, summary_only: bool,
          output: Optional[str], wait: bool = False, worker: bool = False,
          workers: Optional[int] = None, storage: Optional[str] = None) -> None:
    from archspec.experiment.sweep import (DONE, check_points, load_sweep, point_status,
                                      write_manifest)
    from archspec.experiment.sweep import parallel_hint as hint_lines
    from archspec.ui.render import console

    sw = load_sweep(file, output)
    if worker or workers or storage or not sw.search.enumerated:   # an Optuna study
        from archspec.commands.sweep_study import study_sweep

        study_sweep(sw, file, point, parallel_hint, summary_only, output, worker, workers,
                    storage)
        return
    if parallel_hint or summary_only:
        points = sw.points()  # a located error beyond MAX_POINTS
        if parallel_hint:  # commands to launch: every point checked first, as a run would
            check_points(sw, points)
        console.print(points_table(sw, points))
        if parallel_hint:
            for line in hint_lines(sw, points, file):
                console.print(line, style="dim" if line.startswith("#") else None)
        return
    if point is not None and not 0 <= point < sw.count:
        raise BadParameter(f"this sweep has {sw.count:,} points: 0 to {sw.count - 1}",
                           param_hint="--point")
    chosen = sw.points() if point is None else [sw.point(point)]  # one point: no list
    todo = [p for p in chosen if point_status(sw.point_dir(p)) not in DONE]
    check_points(sw, todo)
    write_manifest(sw)
    console.print(f"[bold]sweep {sw.name}[/bold]: {sw.count:,} points, "
                  f"{len(chosen) - len(todo)} already finished, {len(todo)} to run "
                  f"-> {sw.folder}")
    if todo:  # JAX only when something trains
        _sweep_points(sw, todo, file, console, wait)
    console.print()
    console.print(points_table(sw, chosen))


def _sweep_points(sw, todo, file, console, wait=False) -> None:
    from archspec.train.sweep_point import run_point
    from archspec.ui.progress import RichReporter

    reporter = RichReporter(console, summary=False)  # a line per point instead
    for k, p in enumerate(todo, start=1):
        console.print(f"\n[bold]point {p.index}[/bold] ({k}/{len(todo)}) {p.id}: {p.describe()}")
        what, result = run_point(sw, p, reporter, wait)
        if result is not None and result.stopped:
            console.print(f"stopped; run `archspec sweep {file}` again to resume")
            break
        if result is not None:
            test = result.test or {}
            acc = next((v for key, v in test.items() if key.startswith("accuracy")), None)
            console.print(f"{what} {result.run_dir} in {result.seconds:.1f} s" +
                          (f", test accuracy {100 * acc:.2f}%" if acc is not None else ""))


def summary_rows(sweep: Sweep, points: list[Point]) -> list[dict]:
    from archspec.runs.listing import read_run

    rows = []
    for p in points:
        d = sweep.point_dir(p)
        row = read_run(d, sweep.folder).to_dict() if d.exists() else {"status": "not run"}
        rows.append({"index": p.index, "id": p.id, "overrides": p.varying, **row})
    return rows


def points_table(sweep: Sweep, points: list[Point]):
    from archspec.ui.train_tables import sweep_table

    return sweep_table(sweep, points, summary_rows(sweep, points))


def sweep_detail(sw) -> str:
    """What `archspec check` says of a valid sweep file."""
    from collections import Counter

    from archspec.experiment.sweep import point_status

    if sw.search.enumerated:
        text = f"{len(sw.points())} point(s), each checked against {sw.experiment}"
    else:
        text = (f"{sw.search.kind} search of {sw.search.trials} trials; "
                f"{len(sw.checked_points())} probe point(s) checked against {sw.experiment}")
    found = Counter(point_status(d) for d in sorted(sw.folder.glob("*"))
                    if (d / "metrics.jsonl").exists()) if sw.folder.is_dir() else {}
    if found:  # how its runs so far ended: finished, pruned, ...
        text += f"; {sw.folder}: " + ", ".join(f"{n} {s}" for s, n in sorted(found.items()))
    return text
