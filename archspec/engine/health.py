"""Training health: divergence (non-finite, or a finite loss that explodes), dead ReLU
units, collapse, and accuracy that never leaves chance.

The lecture: networks "diverge, correlate, collapse (all the weights go to 0)"; a ReLU
network dies when every unit sits at zero, and "when they collapse, you can only retrain and
hope". The step refuses non-finite updates; this monitor reads each step's health values,
warns, and declares divergence or collapse so the loop can restart with a new seed."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from archspec.model.build import DEAD


class AttemptFailed(Exception):
    def __init__(self, outcome: str, step: int, detail: str, hint: str):
        super().__init__(f"{outcome} at step {step}: {detail}")
        self.outcome, self.step, self.detail, self.hint = outcome, step, detail, hint


@dataclass
class Monitor:
    cfg: object                       # config.Health
    layer_order: list                 # parameterised layers, input to output
    warn: object                      # callable(str) for warnings
    nonfinite_run: int = 0
    collapse_run: int = 0
    warned: set = field(default_factory=set)
    dead_sum: dict = field(default_factory=dict)
    grad_sum: dict = field(default_factory=dict)
    steps: int = 0
    skipped: int = 0
    start_losses: list = field(default_factory=list)
    smoothed: float | None = None
    chance_run: int = 0
    best_loss: float | None = None

    START_STEPS = 1         # the loss before the first update is the reference: one step
                            # at a huge rate already makes the second loss enormous
    SMOOTHING = 0.1         # weight of a new step in the running loss (about 10 steps)
    CHANCE_MARGIN = 0.01    # "at chance": no more than 1 point above the majority rate
    LOSS_PROGRESS = 0.01    # an epoch loss 1% under the best before it is still learning

    def observe(self, step: int, health: dict) -> None:
        """Check one step's health values (host copies); raise AttemptFailed when declared."""
        self.steps += 1
        dead = {k.removeprefix(DEAD): float(v) for k, v in health.items() if k.startswith(DEAD)}
        grads = {k.removeprefix("grad:"): float(v) for k, v in health.items()
                 if k.startswith("grad:")}
        for k, v in dead.items():
            self.dead_sum[k] = self.dead_sum.get(k, 0.0) + v
        for k, v in grads.items():
            if np.isfinite(v):
                self.grad_sum[k] = self.grad_sum.get(k, 0.0) + v
        self._divergence(step, bool(health["finite"]), grads)
        if bool(health["finite"]) and "loss" in health:
            self._explosion(step, float(health["loss"]))
        self._dead_units(step, dead, float(health["output_spread"]))

    def _explosion(self, step, loss):
        """A finite loss far above where training started is divergence too: at lr=1e6 an
        MLP's loss climbs to 1e20 without ever overflowing."""
        if len(self.start_losses) < self.START_STEPS:
            self.start_losses.append(loss)
        # a plain mean: np.mean on a short list costs more than the rest of this check
        start = max(sum(self.start_losses) / len(self.start_losses), 1e-3)
        a = self.SMOOTHING
        self.smoothed = loss if self.smoothed is None else (1 - a) * self.smoothed + a * loss
        if self.smoothed > self.cfg.explode_factor * start:
            raise AttemptFailed(
                "diverged", step,
                f"the loss exploded: {self.smoothed:.4g} (smoothed) against {start:.4g} at the "
                f"start of training, over {self.cfg.explode_factor:g}×",
                "lower the learning rate (--set optimizer.lr=...), add gradient clipping "
                "(optimizer.clip_norm), or check the inputs are normalised (data.normalize)")

    def check_chance(self, step: int, accuracy: float | None, chance: float | None,
                     loss: float | None = None) -> None:
        """After each complete epoch: declare a stalled run when, for `health.chance_epochs`
        epochs in a row, train accuracy stayed at chance (the majority-class rate) and the
        epoch's loss did not improve on the best before it, once the run has taken
        `health.chance_min_steps` steps. A falling loss is learning, even below chance (an
        unlucky start climbs out of it)."""
        if accuracy is None or chance is None or not self.cfg.chance_epochs:
            return
        improving = loss is not None and (self.best_loss is None or
                                          loss < self.best_loss * (1 - self.LOSS_PROGRESS))
        if loss is not None and (self.best_loss is None or loss < self.best_loss):
            self.best_loss = loss
        flat = accuracy <= chance + self.CHANCE_MARGIN and not improving
        self.chance_run = self.chance_run + 1 if flat else 0
        if self.chance_run >= self.cfg.chance_epochs and step >= self.cfg.chance_min_steps:
            raise AttemptFailed(
                "stalled", step,
                f"train accuracy {100 * accuracy:.2f}% is at chance ({100 * chance:.2f}%, "
                f"the majority class)" + ("" if loss is None else
                                         f" and the loss stopped improving ({loss:.4g})") +
                f" for {self.chance_run} epochs",
                "check that the head fits the data and the labels match the inputs; try a "
                "lower learning rate or --set health.restarts=N")

    def _divergence(self, step, finite, grads):
        if finite:
            self.nonfinite_run = 0
            return
        self.skipped += 1
        self.nonfinite_run += 1
        bad = [k for k in reversed(self.layer_order) if not np.isfinite(grads.get(k, 0.0))]
        where = (f"gradient of '{bad[0]}' is non-finite first (backward from the output)"
                 + (f", {len(bad) - 1} more layer(s) after it" if len(bad) > 1 else "")
                 if bad else "the loss is non-finite")
        hint = ("lower the learning rate (--set optimizer.lr=...), add gradient clipping "
                "(optimizer.clip_norm), or check the inputs are normalised (data.normalize)")
        self.warn(f"step {step}: non-finite loss or gradient, update skipped; {where}")
        if self.nonfinite_run >= self.cfg.max_nonfinite:
            raise AttemptFailed("diverged", step, where, hint)

    def _dead_units(self, step, dead, spread):
        for layer, frac in dead.items():
            if frac >= self.cfg.dead_warn and layer not in self.warned:
                self.warned.add(layer)
                self.warn(f"step {step}: {100 * frac:.0f}% of the ReLU units of '{layer}' "
                          "are dead (zero for the whole batch)")
        fully_dead = [k for k, v in dead.items() if v >= 1.0]
        constant = spread < 1e-6
        if fully_dead or constant:
            self.collapse_run += 1
        else:
            self.collapse_run = 0
        if self.collapse_run >= self.cfg.collapse_steps:
            detail = (f"every ReLU unit of '{fully_dead[0]}' is dead" if fully_dead
                      else "the predictions are constant: the output no longer depends on the input")
            raise AttemptFailed("collapsed", step, detail + f" for {self.collapse_run} steps",
                                "re-initialise (--set health.restarts=N), lower the learning rate, "
                                "or use a safer initialiser (he_normal)")

    def epoch_summary(self) -> dict:
        """Mean dead fraction per layer and mean gradient norm per layer; then reset."""
        n = max(self.steps, 1)
        out = {"dead_units": {k: v / n for k, v in self.dead_sum.items()},
               "grad_norms": {k: v / n for k, v in self.grad_sum.items()},
               "skipped_steps": self.skipped}
        self.dead_sum, self.grad_sum, self.steps, self.skipped = {}, {}, 0, 0
        return out
