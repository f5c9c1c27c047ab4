"""What training tells the person running it, as calls on a reporter: the loop never
prints. The terminal's reporter (progress bar, epoch lines, tables) lives in archspec.ui;
library use and tests take `NullReporter`."""
from __future__ import annotations

from typing import Callable, Protocol

# A warning as (message, hint): run-folder and checkpoint code reports through one of these.
Warn = Callable[..., None]


def ignore(message: str, hint: str | None = None) -> None:
    """The `Warn` that drops what it is told (library use)."""


class Reporter(Protocol):
    def run_start(self, setup, run_dir, resume: bool) -> None:
        """Once, before the first step of the first attempt."""

    def resumed(self, step: int) -> None:
        """A resumed run continues from the verified checkpoint of `step`."""

    def compiling(self, setup) -> None:
        """An attempt starts: the progress of `setup.total_steps` steps begins."""

    def step(self, step: int, epoch: int, metrics: dict, examples_per_s: float) -> None:
        """After every training step; `metrics` may still be on the device."""

    def epoch_end(self, epoch: int, epochs: int, row: dict) -> None:
        """An epoch's record: row["train"], and row["val"] when validated."""

    def evaluating(self, split: str, examples: int) -> None:
        """A split of `examples` examples is about to be measured."""

    def eval_progress(self, done: int) -> None:
        """`done` examples of the split being measured are measured."""

    def warning(self, message: str, hint: str | None = None) -> None:
        """A problem found in the run's files that does not stop the run."""

    def note(self, message: str) -> None:
        """A line about the run a person should read once (e.g. what `init:` loaded)."""

    def training_warning(self, message: str) -> None:
        """Something seen while the steps run (health checks, a checkpoint fallen back)."""

    def attempt_failed(self, outcome: str, step: int, detail: str, hint: str) -> None:
        """An attempt collapsed or diverged (health checks)."""

    def restarting(self, attempt: int, attempts: int, seed: int) -> None:
        """A new attempt (1-based `attempt` of `attempts`) with a new seed."""

    def attempt_end(self) -> None:
        """The steps of an attempt are over (finished, stopped or failed)."""

    def failed(self, text: str) -> None:
        """The run ends on an error while it trains (a streamed file gone bad): the
        command prints it; the run's own log keeps it too."""

    def finish(self, result, setup) -> None:
        """The run is over."""


class NullReporter:
    """A reporter that says nothing."""

    def run_start(self, setup, run_dir, resume):
        pass

    def resumed(self, step):
        pass

    def compiling(self, setup):
        pass

    def step(self, step, epoch, metrics, examples_per_s):
        pass

    def epoch_end(self, epoch, epochs, row):
        pass

    def evaluating(self, split, examples):
        pass

    def eval_progress(self, done):
        pass

    def warning(self, message, hint=None):
        pass

    def note(self, message):
        pass

    def training_warning(self, message):
        pass

    def attempt_failed(self, outcome, step, detail, hint):
        pass

    def restarting(self, attempt, attempts, seed):
        pass

    def attempt_end(self):
        pass

    def failed(self, text):
        pass

    def finish(self, result, setup):
        pass
