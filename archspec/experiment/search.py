"""The search of a sweep file: how points are chosen (`search:`), how many (`trials:`), what
is compared (`metric:`, `direction:`), what stops a bad trial early (`pruner:`), and the
distributions of `random:`, with their conditions (`when:`).

    search: tpe            # grid (every combination; the default) | random | tpe | cmaes | qmc
    trials: 20             # trials in all, shared by every worker (not with grid)
    metric: val.accuracy   # the default; val.loss without a classifier head
    pruner: asha           # none | median | asha | hyperband, or
                           # {name: asha, min_trials: 4, min_epochs: 3, reduction_factor: 3}
    random:
      optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}
      optimizer.name: {choice: [adam, momentum]}
      optimizer.momentum: {uniform: [0.8, 0.99], when: {optimizer.name: momentum}}
      batch_size: {int: [32, 128]}

This module reads and checks these keys only; the sampling itself is Optuna's
(experiment/study.py), and `search: grid` enumerates points as sweeps always have."""
from __future__ import annotations

import math
import random as _random
import re
from dataclasses import dataclass

from archspec.errors import ErrorCollector, did_you_mean

SEARCHES = ("grid", "random", "tpe", "cmaes", "qmc")
PRUNERS = ("none", "median", "asha", "hyperband")
RUNGS = ("asha", "hyperband")   # the pruners with rungs, which reduction_factor spaces
DIRECTIONS = ("maximize", "minimize")
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "int")
METRICS = ("val.accuracy", "val.loss", "val.mean_iou")
DEFAULT_MIN_TRIALS = 4
_METRIC = re.compile(r"val\.(loss|accuracy|mean_iou)(_.+)?")
_EXPECTED = ("{choice: [a, b]}, {uniform: [lo, hi]}, {loguniform: [lo, hi]} or {int: [lo, hi]}, "
             "optionally with when: {key: value}")


@dataclass(frozen=True)
class Search:
    kind: str = "grid"
    trials: int | None = None      # None with grid: one trial per point
    metric: str | None = None      # None: val.accuracy, or val.loss without a classifier
    direction: str | None = None   # None: from the metric
    pruner: str = "none"
    min_trials: int = DEFAULT_MIN_TRIALS   # trials that reached an epoch before one is pruned
    min_epochs: int = 1    # no trial is pruned before this epoch (ASHA's first rung)
    reduction_factor: int = 3   # ASHA and Hyperband keep the best 1/reduction_factor at a rung

    @property
    def rung_factor(self) -> int | None:
        """How far apart the pruner's rungs are; None for a pruner without rungs."""
        return self.reduction_factor if self.pruner in RUNGS else None

    @property
    def enumerated(self) -> bool:
        """grid: the points are listed in advance (and `--point K` runs one)."""
        return self.kind == "grid"

    def resolved(self, classifier: bool) -> tuple[str, str]:
        """(metric, direction): the defaults filled in for an experiment with or without a
        classifier head."""
        metric = self.metric or ("val.accuracy" if classifier else "val.loss")
        default = "minimize" if metric.startswith("val.loss") else "maximize"
        return metric, self.direction or default


# --- reading the keys ------------------------------------------------------------------------
def check_search(root, at, errors: ErrorCollector) -> Search:
    """search, trials, metric, direction and pruner: each checked at its line."""
    kind = _word(root, "search", SEARCHES, at, errors) or "grid"
    trials = root.get("trials")
    if trials is not None and (not isinstance(trials, int) or isinstance(trials, bool)
                               or trials < 1):
        errors.add("`trials` is a positive integer", at("trials"), "trials", found=repr(trials))
    if kind == "grid" and trials is not None:
        errors.add("a grid runs every point: `trials` is for the other searches", at("trials"),
                   "trials", expected="search: random, tpe, cmaes or qmc", found="search: grid",
                   hint="remove `trials`, or add e.g. `search: tpe`")
    if kind != "grid" and trials is None:
        errors.add(f"`search: {kind}` needs a budget", at("search"), "search",
                   expected="trials: N (trials in all, shared by every worker)")
    if kind != "grid" and root.get("samples") is not None:
        errors.add("`samples` counts the random draws of a grid", at("samples"), "samples",
                   expected="trials: N", found=f"search: {kind}",
                   hint=f"a {kind} search draws `trials` points: use `trials` instead")
    metric = _metric(root, at, errors)
    direction = _word(root, "direction", DIRECTIONS, at, errors)
    if metric and direction:
        natural = "minimize" if metric.startswith("val.loss") else "maximize"
        if direction != natural:
            errors.add(f"{metric} is to {natural}", at("direction"), "direction",
                       expected=f"direction: {natural}", found=f"direction: {direction}",
                       hint="remove `direction`: it follows from the metric")
    return Search(kind, trials, metric, direction, *_pruner(root, at, errors))


def _word(root, key, choices, at, errors):
    value = root.get(key)
    if value is None:
        return None
    if value not in choices:
        errors.add(f"unknown {key} {value!r}", at(key), key,
                   expected="one of: " + ", ".join(choices), found=repr(value),
                   hint=did_you_mean(str(value), choices))
        return None
    return value


def _metric(root, at, errors):
    value = root.get("metric")
    if value is None or isinstance(value, str) and _METRIC.fullmatch(value):
        return value
    where = str(value).partition(".")[0]
    errors.add(f"unknown metric {value!r}", at("metric"), "metric",
               expected="val.accuracy, val.loss or val.mean_iou (or with _<head>)",
               found=repr(value),
               hint="a search compares validation scores: use val.*, not train or test"
               if where in ("train", "test") else did_you_mean(str(value), METRICS))
    return None


_PRUNER_COUNTS = {  # key: (default, least value, what it counts)
    "min_trials": (DEFAULT_MIN_TRIALS, 1, "trials that must have reached an epoch before one "
                   "is pruned there"),
    "min_epochs": (1, 1, "the first epoch at which a trial may be pruned: raise it where early "
                   "epochs do not predict the end (a long warm-up, a schedule that decays late)"),
    "reduction_factor": (3, 2, "ASHA and Hyperband keep the best 1/reduction_factor of the "
                         "trials at each rung, and the rungs are that factor apart")}
_PRUNER_KEYS = ("name", *_PRUNER_COUNTS)


def _pruner(root, at, errors) -> tuple:
    value = root.get("pruner")
    if value is None:
        return ("none", *(default for default, _, _ in _PRUNER_COUNTS.values()))
    node, name = (value, value.get("name")) if isinstance(value, dict) else ({}, value)
    if isinstance(value, dict):
        for key in value:
            if key not in _PRUNER_KEYS:
                errors.add(f"unknown key '{key}' in `pruner`", value.key_pos.get(key, at("pruner"))
                           if hasattr(value, "key_pos") else at("pruner"), f"pruner.{key}",
                           expected=", ".join(_PRUNER_KEYS), found=repr(key),
                           hint=did_you_mean(str(key), _PRUNER_KEYS))
    if name not in PRUNERS:
        errors.add(f"unknown pruner {name!r}", at("pruner"), "pruner",
                   expected="one of: " + ", ".join(PRUNERS), found=repr(name),
                   hint=did_you_mean(str(name), PRUNERS))
        name = "none"
    if "reduction_factor" in node and name not in RUNGS:
        errors.add(f"`reduction_factor` spaces the rungs of {' and '.join(RUNGS)}",
                   at("pruner"), "pruner.reduction_factor", expected="name: asha or hyperband",
                   found=f"name: {name}", hint="remove `reduction_factor`, or use asha")
    return (name, *(_count(node, key, at, errors) for key in _PRUNER_COUNTS))


def _count(node, key, at, errors) -> int:
    default, least, what = _PRUNER_COUNTS[key]
    value = node.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        errors.add(f"`{key}` is an integer of at least {least}" if least > 1 else
                   f"`{key}` is a positive integer", at("pruner"), f"pruner.{key}",
                   found=repr(value), hint=what)
        return default
    return value


def check_distribution(spec, pos, where, errors: ErrorCollector) -> None:
    """One `random:` entry: a distribution and, optionally, `when:`."""
    if not isinstance(spec, dict) or not 1 <= len(spec) <= 2 or \
            len(spec) == 2 and "when" not in spec:
        errors.add("a random entry is one distribution", pos, where, expected=_EXPECTED,
                   found=repr(spec))
        return
    (kind, arg), = ((k, v) for k, v in spec.items() if k != "when")
    if kind not in DISTRIBUTIONS:
        errors.add(f"unknown distribution '{kind}'", pos, where, expected=_EXPECTED,
                   found=repr(kind), hint=did_you_mean(str(kind), DISTRIBUTIONS))
    elif kind == "choice":
        if not isinstance(arg, list) or not arg:
            errors.add("choice needs a non-empty list", pos, where, found=repr(arg))
    elif not (isinstance(arg, list) and len(arg) == 2
              and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in arg)
              and arg[0] <= arg[1]):
        errors.add(f"{kind} needs [low, high] numbers, low <= high", pos, where, found=repr(arg))
    elif kind == "int" and not all(isinstance(a, int) for a in arg):
        errors.add("int needs [low, high] whole numbers", pos, where, found=repr(arg),
                   hint="both ends are included: {int: [1, 4]} draws 1, 2, 3 or 4")
    elif kind == "loguniform" and arg[0] <= 0:
        errors.add("loguniform needs a positive low end", pos, where, found=repr(arg),
                   hint="draw on a log scale from e.g. [1.0e-5, 1.0e-2]")


def check_conditions(grid: dict, random: dict, errors: ErrorCollector) -> None:
    """`when: {key: value or [values]}` names a key swept before this one (in `grid`, or
    earlier in `random`), and values that key can take."""
    order = list(map(str, grid)) + list(map(str, random))
    for i, key in enumerate(map(str, random)):
        spec = random[key]
        when = spec.get("when") if isinstance(spec, dict) else None
        if when is None:
            continue
        pos = getattr(spec, "val_pos", {}).get("when", random.val_pos.get(key)
                                               if hasattr(random, "val_pos") else None)
        if not isinstance(when, dict) or not when:
            errors.add("`when` is a mapping of swept keys to values", pos, f"random.{key}.when",
                       expected="{optimizer.name: momentum}", found=repr(when))
            continue
        earlier = order[:len(grid) + i]
        for cond, want in when.items():
            if str(cond) not in earlier:
                errors.add(f"`when` names '{cond}', which is not swept before '{key}'", pos,
                           f"random.{key}.when", expected="one of: " + (", ".join(earlier)
                                                                      or "(no earlier key)"),
                           found=repr(cond), hint=did_you_mean(str(cond), earlier) or
                           "a condition reads a key of `grid`, or one earlier in `random`")
                continue
            possible = values_of(grid.get(cond, random.get(cond)))
            for w in (want if isinstance(want, list) else [want]):
                if possible is not None and w not in possible:
                    errors.add(f"'{cond}' never takes the value {w!r}", pos,
                               f"random.{key}.when", expected="one of: " +
                               ", ".join(map(str, possible)), found=repr(w),
                               hint=did_you_mean(str(w), possible))


def values_of(spec) -> list | None:
    """The values a grid list or a choice can take; None for a range."""
    if isinstance(spec, list):
        return list(spec)
    if isinstance(spec, dict) and isinstance(spec.get("choice"), list):
        return list(spec["choice"])
    return None


# --- using them ------------------------------------------------------------------------------
def applies(spec, chosen: dict) -> bool:
    """Whether a `random:` entry is drawn, given the values chosen before it."""
    when = spec.get("when") if isinstance(spec, dict) else None
    return not when or all(
        k in chosen and chosen[k] in (w if isinstance(w, list) else [w]) for k, w in when.items())


def distribution(spec) -> tuple[str, object]:
    (kind, arg), = ((k, v) for k, v in spec.items() if k != "when")
    return kind, arg


def round4(v: float, digits: int = 4) -> float:
    """Random draws keep 4 significant digits: readable overrides and stable ids."""
    return float(f"{v:.{digits}g}")


def draw(rng: _random.Random, spec: dict):
    kind, arg = distribution(spec)
    if kind == "choice":
        return arg[rng.randrange(len(arg))]
    if kind == "int":
        return rng.randint(int(arg[0]), int(arg[1]))
    lo, hi = float(arg[0]), float(arg[1])
    if kind == "uniform":
        return round4(rng.uniform(lo, hi))
    return round4(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def probe_points(grid: dict, random: dict) -> list[dict]:
    """Points that try every value of a list and both ends of a range (each beside the
    first value of every other key, conditions applied): what a search might train is
    checked against the experiment before anything trains."""
    space = {**{k: list(v) for k, v in grid.items()},
             **{k: values_of(s) or list(distribution(s)[1]) for k, s in random.items()}}
    first = {k: v[0] for k, v in space.items()}
    probes, seen = [], set()
    for key, values in space.items():
        when = random[key].get("when") or {} if key in random else {}
        forced = {k: w[0] if isinstance(w, list) else w for k, w in when.items()}
        for v in values:
            chosen = {}
            for k in space:
                value = v if k == key else forced.get(k, first[k])
                if k in random and not applies(random[k], chosen):
                    continue
                chosen[k] = value
            marker = repr(sorted(chosen.items(), key=lambda kv: kv[0]))
            if marker not in seen:
                seen.add(marker)
                probes.append(chosen)
    return probes or [{}]


__all__ = ["Search", "SEARCHES", "PRUNERS", "DIRECTIONS", "DISTRIBUTIONS", "check_search",
           "check_distribution", "check_conditions", "applies", "distribution", "draw",
           "probe_points", "values_of", "round4"]
