"""The terminal's training reporter: what is about to train, a progress bar with loss,
examples/s and ETA (showing "compiling" until the first step is back), a bar while a split
is measured, one line per epoch, the epochs table after each attempt, and the final summary.
Everything but the bars is also written to the run folder's train.log as it is printed, so
the record survives a Ctrl-C that a `| tee` would not."""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import jax
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from archspec.ui.render import console as default_console
from archspec.ui.render import print_problem
from archspec.ui.train_tables import (epoch_line, epochs_table, header_line, result_table,
                                      slow_step_notice)

LOG_NAME = "train.log"
LOG_WIDTH = 160  # tables in the log are drawn at their natural width up to this


class RichReporter:
    """Implements archspec.engine.reporter.Reporter for a person at a terminal.
    `summary`: print what trains and the result table (`archspec train` does; a sweep
    prints its own line per point). `keep_log`: write the run folder's train.log (process 0
    of a multi-host launch does; the others only print)."""

    def __init__(self, console: Console | None = None, progress: bool = True,
                 summary: bool = True, keep_log: bool = True):
        self.console = console or default_console
        self.keep_log = keep_log
        # bars only where a person watches: rich lays them out even when nothing shows them
        self.show_progress = progress and self.console.is_terminal
        self.summary = summary
        self.progress = None
        self.log: Console | None = None
        self.rows, self.last, self.total = [], 0.0, 0
        self.eval_task = None

    def run_start(self, setup, run_dir, resume):
        if self.keep_log:
            self._open_log(Path(run_dir))
        if resume:
            self._say(f"resuming [bold]{run_dir}[/bold]")
        elif self.summary:
            self._say(header_line(setup))
            if setup.conv_choice:
                self._say(conv_choice_line(setup.conv_choice))
            notice = slow_step_notice(setup)
            if notice:
                self._say(notice)

    def resumed(self, step):
        self._say(f"continuing from checkpoint {step} (its checksums verified)")

    def compiling(self, setup):
        self.rows, self.last, self.total = [], 0.0, setup.total_steps
        self.t_compile, self.compiled = time.perf_counter(), False
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} ex/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=True, disable=not self.show_progress)
        self.progress.start()
        self.task = self.progress.add_task("compiling", total=self.total, loss="-", speed="-")

    def step(self, step, epoch, metrics, examples_per_s):
        now = time.perf_counter()
        if now - self.last < 0.25 and step < self.total:
            self.progress.update(self.task, completed=step)
            return
        self.last = now
        loss = float(jax.device_get(metrics["loss"]))
        if not self.compiled:  # the first step's result is back: compiling is over
            self.compiled = True
            self._log(f"first step compiled and ran in {time.perf_counter() - self.t_compile:.1f} s")
        self.progress.update(self.task, completed=step, description=f"epoch {epoch + 1}",
                             loss=f"{loss:.4f}", speed=f"{examples_per_s:,.0f}")

    def epoch_end(self, epoch, epochs, row):
        self.rows.append((epoch, row))
        self._say(epoch_line(epoch, epochs, row))

    def evaluating(self, split, examples):
        if not self.show_progress:  # no bars to draw (rich would still lay them out)
            return
        if self.progress is None:  # after training (the test split): a bar of its own
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=self.console, transient=True,
                disable=not self.show_progress)
            self.progress.start()
        self.eval_task = self.progress.add_task(f"measuring {split}", total=examples,
                                                loss="-", speed="-")
        self.eval_total = examples

    def eval_progress(self, done):
        if self.eval_task is None:
            return
        self.progress.update(self.eval_task, completed=done)
        if done >= self.eval_total:
            self.progress.remove_task(self.eval_task)
            self.eval_task = None
            if not self.progress.tasks:  # the test split's own bar
                self._stop_progress()

    def warning(self, message, hint=None):
        print_problem("warning", message, hint)
        self._log(f"warning: {message}" + (f"\n    hint: {hint}" if hint else ""))

    def note(self, message):
        self._say(message)

    def training_warning(self, message):
        self._say(f"[yellow]warning:[/yellow] {message}")

    def attempt_failed(self, outcome, step, detail, hint):
        self._say(f"[bold red]{outcome}[/bold red] at step {step}: {detail}\n    hint: {hint}")

    def restarting(self, attempt, attempts, seed):
        self._say(f"restarting (attempt {attempt} of {attempts}) with seed {seed}")

    def failed(self, text):
        self._stop_progress()
        self._log(text)  # the terminal gets it from the command's error handler

    def attempt_end(self):
        self._stop_progress()
        if self.rows:
            self._say(epochs_table(self.rows))

    def finish(self, result, setup):
        self._stop_progress()
        if self.summary:
            self._say(result_table(result))
            if setup.exp.expect and result.outcome == "finished":
                self._say(_expectations(result, setup))
        if self.log is not None:
            self.log.file.close()
            self.log = None

    def _stop_progress(self):
        if self.progress is not None:
            self.progress.stop()
            self.progress, self.eval_task = None, None

    def _open_log(self, run_dir: Path) -> None:
        """train.log in the run folder, appended to by a resume, never through a link."""
        from archspec.runs.files import open_append

        self.log_path = run_dir / LOG_NAME
        f = open_append(self.log_path)
        self.log = Console(file=f, width=LOG_WIDTH, color_system=None, force_terminal=False,
                           highlight=False, emoji=False)
        self._log(f"$ archspec {shlex.join(sys.argv[1:])}  ({time.strftime('%Y-%m-%d %H:%M:%S')})")

    def _say(self, renderable) -> None:
        """Print to the terminal (above the bars) and to train.log."""
        out = self.progress.console if self.progress is not None else self.console
        out.print(renderable)
        self._log(renderable)

    def _log(self, renderable) -> None:
        if self.log is None:
            return
        try:
            self.log.print(renderable)
            self.log.file.flush()
        except OSError as exc:  # a full disk: the run ends with that error, logged no more
            from archspec.runs.files import write_error

            self.log = None
            raise write_error(self.log_path, exc) from None


def _expectations(result, setup):
    """The experiment's `expect:` judged on this run (a smoke run is not judged)."""
    if setup.smoke:
        return (f"{len(setup.exp.expect)} expectation(s) not judged: a smoke run "
                "(archspec check --full judges them)")
    from archspec.experiment.expect import facts_of_result, judge
    from archspec.ui.check_table import expectations_table

    return expectations_table(judge(setup.exp.expect, facts_of_result(result, setup)))


def conv_choice_line(c: dict) -> str:
    """Which convolutions took oneDNN under `auto` (layers/onednn/choice.py)."""
    now = f"; {c['measured']} measured now" if c["measured"] else ""
    if c.get("network") == "xla":
        return (f"convolutions: XLA for all {c['xla']} shapes (oneDNN won {c['alone']} of "
                f"them alone but slowed this network's step; measured on this machine{now})")
    return (f"convolutions: oneDNN for {c['onednn']} of {c['onednn'] + c['xla']} shapes, "
            f"XLA for {c['xla']} (measured on this machine{now})")
