"""The table of `archspec runs`: one row per run folder."""
from __future__ import annotations

from pathlib import Path

from rich import box

from archspec.ui.tables import Column, table

RUNNING = "running/killed"
STATUS_STYLE = {"finished": "green", "stopped": "yellow", "collapsed": "red", "diverged": "red",
                "stalled": "red", "pruned": "cyan", RUNNING: "magenta"}


def fmt_metric(metric: str | None, value: float | None) -> str:
    if value is None or metric is None:
        return "-"
    if metric.startswith("accuracy"):
        return f"{100 * value:.2f}%"
    return f"{value:.4f} loss"


def runs_table(rows, title: str = ""):
    """The run folder (which names the experiment: <experiment>/<timestamp>) leads; an
    experiment column is added when some folder is named otherwise (sweep points). Too
    narrow a terminal hides speed, then the start date."""
    show_exp = any(Path(r.run).parent.name != r.experiment for r in rows)
    cols = [Column("run", "name")] + ([Column("experiment", "name")] if show_exp else []) + [
        Column("started", "number", justify="left", drop=2), Column("best val", "number"),
        Column("test", "number"), Column("epochs", "number"),
        Column("ex/s", "number", drop=3), Column("status", "name")]
    return table(cols, [_cells(r, show_exp) for r in rows], title=title or None,
                 box=box.SIMPLE_HEAD)


def _cells(r, show_exp: bool) -> list[str]:
    best = fmt_metric(r.val_metric, r.best_val)
    if r.best_val is not None and r.best_epoch is not None:
        best += f" @{r.best_epoch}"
    epochs = f"{r.epochs}/{r.planned_epochs}" if r.planned_epochs else str(r.epochs)
    return [_escape(r.run)] + ([_escape(r.experiment)] if show_exp else []) + [
        r.date[:16], best, fmt_metric(r.test_metric, r.test), epochs,
        f"{r.examples_per_s:,.0f}" if r.examples_per_s else "-",
        f"[{STATUS_STYLE.get(r.status, 'white')}]{_escape(r.status)}[/]"]


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
