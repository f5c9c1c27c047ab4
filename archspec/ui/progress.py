"""The terminal's training reporter: a progress bar with loss, examples/s and ETA, one line
per epoch, the epochs table after each attempt, and the final summary."""
from __future__ import annotations

import time

import jax
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from archspec.ui.render import console as default_console
from archspec.ui.render import print_problem
from archspec.ui.train_tables import epoch_line, epochs_table, result_table


class RichReporter:
    """Implements archspec.train.reporter.Reporter for a person at a terminal.
    `summary`: print the result table when the run ends (`archspec train` does; a sweep
    prints its own line per point)."""

    def __init__(self, console: Console | None = None, progress: bool = True,
                 summary: bool = True):
        self.console = console or default_console
        self.show_progress = progress
        self.summary = summary
        self.progress = None
        self.rows, self.last, self.total = [], 0.0, 0

    def run_start(self, setup, run_dir, resume):
        pass

    def compiling(self, setup):
        self.rows, self.last, self.total = [], 0.0, setup.total_steps
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} ex/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=True, disable=not self.show_progress)
        self.progress.start()
        self.task = self.progress.add_task("training", total=self.total, loss="-", speed="-")

    def step(self, step, epoch, metrics, examples_per_s):
        now = time.perf_counter()
        if now - self.last < 0.25 and step < self.total:
            self.progress.update(self.task, completed=step)
            return
        self.last = now
        loss = float(jax.device_get(metrics["loss"]))
        self.progress.update(self.task, completed=step, description=f"epoch {epoch + 1}",
                             loss=f"{loss:.4f}", speed=f"{examples_per_s:,.0f}")

    def epoch_end(self, epoch, epochs, row):
        self.rows.append((epoch, row))
        self._out().print(epoch_line(epoch, epochs, row))

    def evaluating(self, split, examples):
        pass

    def warning(self, message, hint=None):
        print_problem("warning", message, hint)

    def training_warning(self, message):
        self._out().print(f"[yellow]warning:[/yellow] {message}")

    def attempt_failed(self, outcome, step, detail, hint):
        self.console.print(f"[bold red]{outcome}[/bold red] at step {step}: {detail}\n"
                           f"    hint: {hint}")

    def restarting(self, attempt, attempts, seed):
        self.console.print(f"restarting (attempt {attempt} of {attempts}) with seed {seed}")

    def attempt_end(self):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.rows:
            self.console.print(epochs_table(self.rows))

    def finish(self, result, setup):
        if self.summary:
            self.console.print(result_table(result))

    def _out(self) -> Console:
        return self.progress.console if self.progress is not None else self.console
