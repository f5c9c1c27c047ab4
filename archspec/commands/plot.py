"""`archspec plot`: training curves of one or more runs, as a picture or in the terminal."""
from __future__ import annotations

from pathlib import Path


def plot(*, runs: list[Path], output: Path, terminal: bool) -> None:
    from archspec.ui.render import console
    from archspec.viz import check_image_path
    from archspec.ui.curves import print_terminal
    from archspec.viz.plot import find_runs, load_curves, plot_curves

    if not terminal:
        check_image_path(output)
    curves = [load_curves(r) for r in find_runs(runs)]
    if terminal:
        print_terminal(curves, console)
        return
    plot_curves(curves, output)
    console.print(f"wrote {output}: {len(curves)} run{'s' if len(curves) != 1 else ''}, "
                  f"{max(c.last_epoch for c in curves)} epochs")
    for folder in runs:   # a sweep's folder: its study's pictures too
        _study_pictures(Path(folder), output, console)


def _study_pictures(folder: Path, output: Path, console) -> None:
    from archspec.viz.study_plots import find_study, plot_study

    study, why_not = find_study(folder)
    if why_not:
        console.print(why_not)
    if study is None:
        return
    named = output.with_name(f"{output.stem}-{folder.name}{output.suffix}")
    for path, what in plot_study(study, named):
        console.print(f"wrote {path}: {what}" if path else what)
