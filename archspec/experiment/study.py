"""A sweep's Optuna study: opening it, claiming a trial, and telling its result.

Claims: under the study's lock (experiment/storage.py), a worker first takes over a running
trial whose worker died, else draws a new one while the budget lasts. `trials: N` counts
every trial of the study, whoever drew it; the draw and its parameters happen under the
lock, so two workers never draw from the same history. Samplers and pruners:
experiment/samplers.py."""
from __future__ import annotations

import hashlib
import json
import math
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from archspec.errors import ArchspecError
from archspec.experiment import search as _search
from archspec.experiment.samplers import EPOCHS, encode, make_pruner, make_sampler
from archspec.experiment.storage import Place, locks_for, open_storage

ATTR = "archspec"   # the study's user attribute describing the sweep


class StudyError(ArchspecError):
    """The study cannot be used as asked (another sweep's, or none yet)."""

    exit_code = 2


@dataclass
class Claim:
    number: int
    trial_id: int
    varying: dict          # the trial's parameters: key.path -> value
    folder: str            # its run folder's name in the sweep folder
    taken_over: bool = False


@dataclass
class Handle:
    """An open study and what a worker needs beside it."""

    sweep: object
    place: Place
    storage: object
    study: object
    locks: object
    metric: str
    direction: str
    budget: int
    pruner: object = None
    points: list = field(default_factory=list)   # search: grid

    def trial_id(self, number: int) -> int:
        sid = self.storage.get_study_id_from_name(self.study.study_name)
        return self.storage.get_trial_id_from_study_id_trial_number(sid, number)

    def close(self) -> None:
        self.locks.close()


def fingerprint(sweep) -> str:
    """What makes two sweep files the same search: its keys, not its budget or its name."""
    text = json.dumps([sweep.search.kind, sweep.fixed, sweep.grid, sweep.random, sweep.seed,
                       sweep.samples if sweep.search.enumerated else None,
                       sweep.experiment.name], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _quiet():
    """Optuna's info lines and experimental-feature warnings are not the user's business."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def open_study(sweep, place: Place, metric: str, direction: str) -> Handle:
    """Create the sweep's study, or join it (a study of another sweep file is refused)."""
    optuna = _quiet()
    points = sweep.points() if sweep.search.enumerated else []
    budget = len(points) if sweep.search.enumerated else sweep.search.trials
    sweep.folder.mkdir(parents=True, exist_ok=True)
    locks = locks_for(place, sweep.folder, sweep.name)
    pruner = make_pruner(sweep.search, metric)
    with locks.critical():   # one worker creates the tables and the study; the rest join
        storage = open_storage(place)
        study = optuna.create_study(storage=storage, study_name=sweep.name,
                                    sampler=make_sampler(sweep, points), pruner=pruner,
                                    direction=direction, load_if_exists=True)
        mine = {"fingerprint": fingerprint(sweep), "metric": metric, "direction": direction,
                "search": sweep.search.kind, "experiment": str(sweep.experiment)}
        theirs = study.user_attrs.get(ATTR)
        if theirs is None:
            study.set_user_attr(ATTR, mine)
    if theirs is not None and theirs.get("fingerprint") != mine["fingerprint"]:
        locks.close()
        raise StudyError(f"the study '{sweep.name}' in {place.describe()} belongs to "
                         "another sweep (its search, values or experiment differ)",
                         "give this sweep another `name:` (or remove the old study)",
                         pos=sweep.places.get("name"))
    _note(sweep, place, metric, direction)
    return Handle(sweep, place, storage, study, locks, metric, direction, budget, pruner, points)


def _note(sweep, place: Place, metric: str, direction: str) -> None:
    """<sweep folder>/study.json: where the study is (without a password), for plots."""
    note = {"study": sweep.name, "storage": place.describe(), "kind": place.kind,
            "search": sweep.search.kind, "metric": metric, "direction": direction}
    tmp = sweep.folder / f".study.json.{os.getpid()}"
    tmp.write_text(json.dumps(note, indent=2) + "\n")
    tmp.replace(sweep.folder / "study.json")


def load_study(name: str, place: Place):
    """The study for reading (--summary, plots); None when there is none yet."""
    optuna = _quiet()
    if place.kind == "journal" and not place.path.exists():
        return None
    try:
        return optuna.load_study(study_name=name, storage=open_storage(place))
    except KeyError:
        return None


# --- parameters ------------------------------------------------------------------------------
def suggest(trial, sweep) -> dict:
    """The trial's values, drawn key by key in the sweep file's order (a conditional key
    only when its condition holds)."""
    chosen = {}
    for key, values in sweep.grid.items():
        chosen[key] = _decode(trial.suggest_categorical(key, [encode(v) for v in values]), values)
    for key, spec in sweep.random.items():
        if not _search.applies(spec, chosen):
            continue
        kind, arg = _search.distribution(spec)
        if kind == "choice":
            chosen[key] = _decode(trial.suggest_categorical(key, [encode(v) for v in arg]), arg)
        elif kind == "int":
            chosen[key] = trial.suggest_int(key, int(arg[0]), int(arg[1]))
        else:
            chosen[key] = trial.suggest_float(key, float(arg[0]), float(arg[1]),
                                              log=kind == "loguniform")
    return chosen


def _decode(value, originals):
    return next((v for v in originals if encode(v) == value), value)


# --- claiming and telling --------------------------------------------------------------------
def claim(h: Handle) -> Claim | None:
    """The next trial for this worker: a dead worker's running trial, else a new one while
    the budget lasts; None when there is nothing left to do."""
    from optuna.trial import TrialState

    with h.locks.critical():
        trials = h.study.get_trials(deepcopy=False)
        for t in trials:
            if t.state != TrialState.RUNNING or not h.locks.try_claim(t.number):
                continue
            # its worker may have finished it after the list was read, then let it go
            if h.storage.get_trial(h.trial_id(t.number)).state != TrialState.RUNNING:
                h.locks.release(t.number)
                continue
            return Claim(t.number, h.trial_id(t.number), _varying(h, t),
                         folder_name(h, t.number), taken_over=True)
        if len(trials) >= h.budget:
            return None
        trial = h.study.ask()
        varying = suggest(trial, h.sweep)
        if not h.locks.try_claim(trial.number):   # cannot happen: nobody saw it yet
            raise StudyError(f"trial {trial.number} was claimed twice")
        trial.set_user_attr("run", folder_name(h, trial.number))
        c = Claim(trial.number, h.trial_id(trial.number), varying, folder_name(h, trial.number))
        log_claim(h, c)
        return c


def _varying(h: Handle, frozen) -> dict:
    """A running trial's values, decoded as `suggest` returned them."""
    if h.sweep.search.enumerated:
        return dict(h.points[frozen.number].varying)
    originals = {**h.sweep.grid, **{k: _search.values_of(s) or [] for k, s in
                                    h.sweep.random.items()}}
    return {k: _decode(v, originals.get(k, [])) for k, v in frozen.params.items()}


def folder_name(h: Handle, number: int) -> str:
    """grid: the point's id (the folder a sweep without a study uses too); else t<number>."""
    return h.points[number].id if h.sweep.search.enumerated else f"t{number:04d}"


def metric_value(record: dict, metric: str):
    """The value of `val.<name>` in a validation record (`val.accuracy`: the first head's)."""
    name = metric.removeprefix("val.")
    record = {k.replace("/", "_"): v for k, v in record.items()}
    value = record.get(name)
    if value is None:
        value = next((v for k, v in record.items() if k.startswith(name + "_")), None)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def reporter_of(h: Handle, c: Claim):
    """The training loop's `on_epoch`: report the validation record to the trial; a reason
    to stop when the pruner says so."""
    import optuna

    trial = optuna.trial.Trial(h.study, c.trial_id)
    told = []

    def on_epoch(epoch: int, epochs: int, val: dict) -> str | None:
        value = metric_value(val, h.metric)
        if value is None:
            return None
        if not told:   # the pruner's rungs end where the run ends
            trial.set_user_attr(EPOCHS, epochs)
            told.append(epochs)
        trial.report(value, epoch)
        if h.pruner is None or not trial.should_prune():
            return None
        trial.set_user_attr("pruned_because", h.pruner.reason)
        return h.pruner.reason

    return on_epoch


def outcome(h: Handle, run_dir: Path) -> tuple[str, float | None, str | None]:
    """(Optuna state, value, why) of a trained run folder: complete with its best validation
    value, pruned, or failed; "running" when it was stopped (another worker resumes it)."""
    from archspec.runs.records import read_metrics

    records = read_metrics(run_dir) if run_dir.exists() else []
    summary = [r for r in records if r.get("split") == "summary"]
    status = summary[-1].get("status") if summary else None
    if status in (None, "stopped"):
        return "running", None, None
    values = [v for r in records if r.get("split") == "val"
              and (v := metric_value(r, h.metric)) is not None]
    if status == "pruned":
        return "pruned", None, summary[-1].get("pruned_because")
    if not values:
        return "fail", None, f"the run ended {status} without a validation {h.metric}"
    return "complete", (max if h.direction == "maximize" else min)(values), None


def tell(h: Handle, c: Claim, run_dir: Path) -> str:
    """Record the trial's result; what was recorded. A result for a trial that is already
    finished (this worker was presumed dead and another finished it) is kept in the study's
    attributes as a late result: never an error."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    state, value, why = outcome(h, run_dir)
    if state == "running":
        return "stopped"
    current = h.storage.get_trial(c.trial_id)
    try:
        if current.state.is_finished():
            raise UpdateFinishedTrialError("finished")
        if why:
            h.storage.set_trial_user_attr(c.trial_id, "pruned_because" if state ==
                                                 "pruned" else "failed_because", why)
        h.study.tell(c.number, value, state={"complete": TrialState.COMPLETE, "pruned":
                                             TrialState.PRUNED, "fail": TrialState.FAIL}[state])
    except UpdateFinishedTrialError:
        h.study.set_user_attr(f"late_result_trial_{c.number}_{os.getpid()}",
                              {"state": state, "value": value, "worker": worker_name(),
                               "recorded_state": current.state.name})
        return "late"
    return state


def fail(h: Handle, c: Claim, why: str) -> None:
    """A trial whose training raised an error: failed, with the error kept beside it."""
    from optuna.trial import TrialState

    if not h.storage.get_trial(c.trial_id).state.is_finished():
        h.storage.set_trial_user_attr(c.trial_id, "failed_because", why)
        h.study.tell(c.number, None, state=TrialState.FAIL)


def log_claim(h: Handle, c: Claim) -> None:
    """<sweep folder>/trials.jsonl: each new trial's folder and values, for labels and
    people (one appended line each: workers never rewrite each other's)."""
    line = json.dumps({"number": c.number, "id": c.folder, "varying": c.varying,
                       "worker": worker_name()}, default=str) + "\n"
    fd = os.open(h.sweep.folder / "trials.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


__all__ = ["Handle", "Claim", "StudyError", "open_study", "load_study", "claim", "tell", "fail",
           "log_claim", "reporter_of", "metric_value", "fingerprint", "suggest"]
