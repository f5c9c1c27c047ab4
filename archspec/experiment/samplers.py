"""The samplers and pruners of a sweep's study (Optuna's, seeded and guarded as sweeps need).

- Seeds: a trial's draw is seeded by (sweep seed, trial number), never by the clock, so
  workers started together draw different points and a rerun draws the same ones.
- `search: grid` gives trial n the sweep's point n (no two workers ever get the same one).
- The pruner compares a trial with the others at the same epoch, and only once
  `min_trials` others have reached it; why a trial was pruned is kept with it.
- ASHA's and Hyperband's last rung is the end of the run: a trial is not pruned at a rung
  whose next rung lies past its last epoch (Optuna's pruners do not know a run's length)."""
from __future__ import annotations

import hashlib
import json
import math

from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler


def derive_seed(seed: int, number: int) -> int:
    digest = hashlib.sha256(f"{seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def make_sampler(sweep, points):
    import optuna.samplers as s

    kind, seed = sweep.search.kind, sweep.seed
    if kind == "grid":
        return PointsSampler(points)
    if kind == "qmc":   # one scrambled sequence for the whole study: one seed
        return s.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False,
                            warn_asynchronous_seeding=False,
                            independent_sampler=PerTrial(lambda n: s.RandomSampler(seed=n), seed))
    makers = {
        "random": lambda n: s.RandomSampler(seed=n),
        "tpe": lambda n: s.TPESampler(seed=n, n_startup_trials=startup_trials(sweep),
                                      constant_liar=True),
        "cmaes": lambda n: s.CmaEsSampler(seed=n, warn_independent_sampling=False,
                                          independent_sampler=s.RandomSampler(seed=n)),
    }
    return PerTrial(makers[kind], seed)


def startup_trials(sweep) -> int:
    """TPE's random start: a third of the budget, between 2 and 10 trials."""
    return max(2, min(10, sweep.search.trials // 3))


class PerTrial(BaseSampler):
    """A sampler seeded per trial: trial n's draws come from a sampler made with seed
    (sweep seed, n). The history it draws from is the study's, as with one sampler."""

    def __init__(self, make, seed: int):
        self._make, self._seed, self._current = make, seed, (None, None)

    def _for(self, trial):
        if self._current[0] != trial.number:
            self._current = (trial.number, self._make(derive_seed(self._seed, trial.number)))
        return self._current[1]

    def infer_relative_search_space(self, study, trial):
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, name, distribution):
        return self._for(trial).sample_independent(study, trial, name, distribution)

    def before_trial(self, study, trial):
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        self._for(trial).after_trial(study, trial, state, values)


class PointsSampler(BaseSampler):
    """search: grid: trial n is point n of the sweep (trial numbers are unique, so no two
    workers ever train the same point)."""

    def __init__(self, points):
        self.points = points

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, name, distribution):
        return encode(self.points[trial.number].varying[name])


def make_pruner(search, metric: str):
    if search.pruner == "none":
        return None
    import optuna.pruners as p

    # epochs are reported from 1: ASHA's rungs are first * factor**k
    first, factor = search.min_epochs, search.reduction_factor
    inner = {"median": lambda: p.MedianPruner(n_startup_trials=0, n_warmup_steps=first,
                                              n_min_trials=search.min_trials),
             "asha": lambda: p.SuccessiveHalvingPruner(min_resource=first,
                                                       reduction_factor=factor),
             "hyperband": lambda: p.HyperbandPruner(min_resource=first,
                                                    reduction_factor=factor)}
    return Guarded(inner[search.pruner](), search.pruner, search.min_trials, metric, first,
                   search.rung_factor)


EPOCHS = "epochs"   # the trial's attribute: its run's number of epochs


class Guarded(BasePruner):
    """A pruner that waits until `min_trials` other trials have reached an epoch, and the
    epoch is `min_epochs` or later, before it prunes there; it says why it pruned (`reason`).
    With rungs `reduction_factor` apart, it does not prune at a rung from which the next is
    past the trial's last epoch: that trial is as good as finished (ASHA's top rung is the
    whole run), and stopping it would save little and lose its last epochs."""

    def __init__(self, inner, name: str, min_trials: int, metric: str, min_epochs: int = 1,
                 reduction_factor: int | None = None):
        self.inner, self.name, self.min_trials, self.metric = inner, name, min_trials, metric
        self.min_epochs, self.reduction_factor = min_epochs, reduction_factor
        self.reason: str | None = None

    def prune(self, study, trial) -> bool:
        self.reason = None
        step = trial.last_step
        if step is None:
            return False
        others = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False)
                  if t.number != trial.number and step in t.intermediate_values
                  and math.isfinite(t.intermediate_values[step])]
        # the inner pruner always runs: ASHA records each trial's rungs as it goes
        if (not self.inner.prune(study, trial) or len(others) < self.min_trials
                or step < self.min_epochs or self._last_rung(trial, step)):
            return False
        mine, ranked = trial.intermediate_values[step], sorted(others)
        best = ranked[0] if self.metric.startswith("val.loss") else ranked[-1]
        self.reason = (f"{self.name} at epoch {step}: {self.metric} {mine:.6g} against "
                       f"{len(others)} other trials there (median {_median(ranked):.6g}, "
                       f"best {best:.6g})")
        return True

    def _last_rung(self, trial, step: int) -> bool:
        epochs = trial.user_attrs.get(EPOCHS)
        return bool(self.reduction_factor and epochs and step * self.reduction_factor > epochs)


def _median(ranked: list[float]) -> float:
    n = len(ranked)
    return ranked[n // 2] if n % 2 else (ranked[n // 2 - 1] + ranked[n // 2]) / 2


def encode(value):
    """Optuna's choices are numbers, strings, booleans or None; a list or mapping (a
    schedule, say) is kept as its JSON text."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else \
        json.dumps(value, sort_keys=True)


__all__ = ["make_sampler", "make_pruner", "PerTrial", "PointsSampler", "Guarded", "EPOCHS",
           "derive_seed", "encode", "startup_trials"]
