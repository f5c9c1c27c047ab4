"""What a person sees while training: a progress bar with loss, examples/s and ETA, one
line per epoch, and a final table."""
from __future__ import annotations

import time

import jax
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table


def _pct(v):
    return f"{100 * v:.2f}%" if v is not None else "-"


def _main_acc(metrics: dict):
    for k, v in metrics.items():
        if k.startswith("accuracy"):
            return v
    return None


class EpochPrinter:
    def __init__(self, console: Console | None, setup, progress: bool = True):
        self.console = console or Console()
        self.setup = setup
        self.rows = []
        self.last = 0.0
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} ex/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=True, disable=not progress)
        self.task = None

    def __enter__(self):
        self.progress.start()
        self.task = self.progress.add_task("training", total=self.setup.total_steps,
                                           loss="-", speed="-")
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        self.final_table()

    def step(self, step, epoch, metrics, speed):
        now = time.perf_counter()
        if now - self.last < 0.25 and step < self.setup.total_steps:
            self.progress.update(self.task, completed=step)
            return
        self.last = now
        loss = float(jax.device_get(metrics["loss"]))
        self.progress.update(self.task, completed=step, description=f"epoch {epoch + 1}",
                             loss=f"{loss:.4f}", speed=f"{speed:,.0f}")

    def warn(self, message: str) -> None:
        self.progress.console.print(f"[yellow]warning:[/yellow] {message}")

    def epoch(self, epoch, epochs, row):
        self.rows.append((epoch, row))
        tr, val = row["train"], row.get("val")
        text = (f"epoch {epoch:>3}/{epochs}  train loss {tr['loss']:.4f}"
                f" acc {_pct(_main_acc(tr))}")
        if val:
            text += f"  │ val loss {val['loss']:.4f} acc {_pct(_main_acc(val))}"
        text += f"  │ {tr['examples_per_s']:,.0f} ex/s"
        dead = tr.get("dead_units") or {}
        if dead:
            layer = max(dead, key=dead.get)
            if dead[layer] > 0:
                text += f"  │ dead {100 * dead[layer]:.0f}% ({layer})"
        self.progress.console.print(text)

    def final_table(self):
        if not self.rows:
            return
        t = Table(title="epochs", title_justify="left", header_style="bold")
        for c in ("epoch", "train loss", "train acc", "val loss", "val acc", "lr", "ex/s",
                  "grad norm", "dead units"):
            t.add_column(c, justify="right", no_wrap=True)
        for epoch, row in self.rows:
            tr, val = row["train"], row.get("val") or {}
            t.add_row(str(epoch), f"{tr['loss']:.4f}", _pct(_main_acc(tr)),
                      f"{val['loss']:.4f}" if val else "-", _pct(_main_acc(val)) if val else "-",
                      f"{tr['lr']:.2e}", f"{tr['examples_per_s']:,.0f}",
                      f"{tr.get('grad_norm', float('nan')):.3g}", _worst_dead(tr))
        self.console.print(t)


def _worst_dead(tr) -> str:
    dead = tr.get("dead_units") or {}
    if not dead:
        return "-"
    layer = max(dead, key=dead.get)
    return f"{100 * dead[layer]:.0f}% {layer.split('.')[-1]}"


def print_result(console: Console, result, setup):
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("run", str(result.run_dir))
    status = {"stopped": f"stopped (resume with: archspec train --resume {result.run_dir})",
              "collapsed": "collapsed (no restarts left)",
              "diverged": "diverged (no restarts left)",
              "stalled": "stalled at chance accuracy (no restarts left)"}.get(result.outcome, result.outcome)
    t.add_row("status", status)
    if result.state is not None:
        t.add_row("time", f"{result.seconds:.1f} s  ({result.examples_per_s:,.0f} examples/s)")
    if result.test:
        acc = _main_acc(result.test)
        t.add_row("test", f"loss {result.test['loss']:.4f}" +
                  (f", accuracy {_pct(acc)}" if acc is not None else "") +
                  f"  ({int(result.test['examples'])} examples)")
    console.print(t)
