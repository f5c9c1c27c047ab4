"""Sweeps: many trainings of one experiment with different `--set` overrides.

A sweep file names an experiment and the values to try:

    name: digits_lr                           # default: the file name
    experiment: ../experiments/digits_mlp.yaml   # relative to the sweep file
    set: {epochs: 2}                          # overrides every point shares
    grid: {optimizer.lr: [0.001, 0.003, 0.01]}  # every combination
    random:                                   # `samples` draws, crossed with the grid
      optimizer.weight_decay: {loguniform: [1.0e-5, 1.0e-3]}
    samples: 4
    seed: 0

Each point is a normal training run (the code path of `archspec train --set ...`) written to
`<output>/<sweep name>/<point id>/`, where the point id is a hash of the point's overrides:
the same overrides always land in the same folder, so running the sweep again skips points
that finished and resumes those that were interrupted. `--point K` runs point K alone, for
running points in parallel under GNU parallel or a SLURM array job.

`search: random|tpe|cmaes|qmc` (experiment/search.py) runs an Optuna study instead, with a
budget of `trials`, an optional pruner and workers that share it (experiment/study.py)."""
from __future__ import annotations

import functools
import hashlib
import json
import math
import random as _random
from dataclasses import dataclass, field
from pathlib import Path

from archspec.errors import ErrorCollector, Pos, SpecError, SpecErrors, did_you_mean
from archspec.experiment import search as _search
from archspec.experiment.search import Search
from archspec.experiment.sweep_reads import READS, fmt_value as _fmt, unread as _unread  # noqa: F401

KEYS = ("name", "description", "experiment", "set", "grid", "random", "samples", "seed",
        "output", "search", "trials", "metric", "direction", "pruner")
DEFAULT_SAMPLES = 4
# a summary status that ends a point for good
DONE = ("finished", "collapsed", "diverged", "stalled", "pruned")
# The most points a sweep lists, checks or runs as a whole (`sweep FILE`, `--summary`,
# `--parallel-hint`, `check`): each point is checked against the experiment before anything
# trains (about 0.2 s a point: 3 minutes for 1,000), and SLURM's default MaxArraySize takes
# array indices 0..1000. A bigger sweep runs point by point (`--point K`, any K).
MAX_POINTS = 1_000


@dataclass
class Point:
    index: int
    overrides: dict           # key.path -> value, every override of the run
    varying: dict             # the grid and random part only
    id: str

    def set_args(self) -> list[str]:
        return [f"{k}={json.dumps(v)}" for k, v in self.overrides.items()]

    def describe(self) -> str:
        return "  ".join(f"{k}={_fmt(v)}" for k, v in self.varying.items()) or "(defaults)"


@dataclass
class Sweep:
    name: str
    source: Path
    experiment: Path
    fixed: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    random: dict = field(default_factory=dict)
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    output: str = "runs"
    search: Search = field(default_factory=Search)
    positions: dict = field(default_factory=dict)   # key.path -> its value's place in the file
    key_positions: dict = field(default_factory=dict)   # key.path -> the key's place
    size_pos: Pos | None = None   # the `grid:` key (else `random:`), which sets the count
    places: dict = field(default_factory=dict)          # top-level key -> its value's place

    @property
    def folder(self) -> Path:
        return Path(self.output) / self.name

    @property
    def count(self) -> int:
        """How many points: every grid combination, each crossed with `samples` draws."""
        return math.prod(len(v) for v in self.grid.values()) * (
            self.samples if self.random else 1)

    def point(self, k: int) -> Point:
        """Point k of the grid product (the last grid key varies fastest) crossed with the
        random draws, found without listing the others: point 999,999 of a million-point
        grid costs what point 0 costs."""
        g, r = divmod(k, self.samples if self.random else 1)
        picked = []
        for key, values in reversed(self.grid.items()):
            g, i = divmod(g, len(values))
            picked.append((key, values[i]))
        varying = dict(reversed(picked))
        for key, value in (self._draws[r] if self.random else {}).items():
            if _search.applies(self.random[key], varying):   # a conditional key: where it holds
                varying[key] = value
        overrides = {**self.fixed, **varying}
        return Point(k, overrides, varying, point_id(overrides))

    @functools.cached_property
    def _draws(self) -> list[dict]:
        rng = _random.Random(self.seed)
        return [{k: _search.draw(rng, spec) for k, spec in self.random.items()}
                for _ in range(self.samples)]

    def points(self) -> list[Point]:
        """Every point, for a sweep of at most MAX_POINTS (a located error beyond)."""
        if self.count > MAX_POINTS:
            raise SpecErrors([SpecError(
                f"this sweep has {self.count:,} points, more than the {MAX_POINTS:,} archspec "
                "lists, checks or runs as one sweep", self.size_pos, "grid" if self.grid
                else "random", expected=f"at most {MAX_POINTS:,} points",
                found=" x ".join(f"{len(v)} ({k})" for k, v in self.grid.items())
                + (f" x {self.samples} samples" if self.random else ""),
                hint=f"split it into several sweep files, or run single points with "
                     f"--point K (K from 0 to {self.count - 1})")])
        return [self.point(k) for k in range(self.count)]

    def point_dir(self, point: Point) -> Path:
        return self.folder / point.id

    def checked_points(self) -> list[Point]:
        """The points checked before anything trains: every point of a grid; for the other
        searches, points that try every listed value and both ends of every range."""
        if self.search.enumerated:
            return self.points()
        return [Point(i, {**self.fixed, **v}, v, point_id({**self.fixed, **v}))
                for i, v in enumerate(_search.probe_points(self.grid, self.random))]


def point_id(overrides: dict) -> str:
    """A stable name for a set of overrides: the same values give the same folder."""
    text = json.dumps(overrides, sort_keys=True, separators=(",", ":"))
    return "p" + hashlib.sha256(text.encode()).hexdigest()[:10]


# --- loading ---------------------------------------------------------------------------------
def load_sweep(path: Path, output: str | None = None, root=None) -> Sweep:
    """Read and check a sweep file; every problem is reported with file:line:col."""
    from archspec.spec.yaml_loader import YList, YMap, load_yaml_file

    path = Path(path)
    root = load_yaml_file(path) if root is None else root
    errors = ErrorCollector()
    top = Pos(str(path), 1, 1)
    if not isinstance(root, YMap):
        errors.add("a sweep file is a YAML mapping", top,
                   expected="keys experiment, grid and/or random", found=type(root).__name__)
        errors.raise_if_any()

    def at(key, value=True):
        return (root.val_pos if value else root.key_pos).get(key, root.pos)

    for key in root:
        if key not in KEYS:
            errors.add(f"unknown key '{key}' in a sweep file", at(key, False), str(key),
                       expected="one of: " + ", ".join(KEYS), found=repr(key),
                       hint=did_you_mean(str(key), KEYS))
    exp_path = _experiment_path(root, path, at, errors)
    maps = {}
    for key in ("set", "grid", "random"):
        value = root.get(key)
        if value is not None and not isinstance(value, YMap):
            errors.add(f"`{key}` is a mapping of key.path: ...", at(key), key,
                       expected="{optimizer.lr: ...}", found=type(value).__name__)
        maps[key] = value if isinstance(value, YMap) else {}
    for key, values in maps["grid"].items():
        if not isinstance(values, YList) or not values:
            errors.add("a grid entry is a non-empty list of values", maps["grid"].val_pos[key],
                       f"grid.{key}", expected="[v1, v2, ...]", found=repr(values))
    for key, spec in maps["random"].items():
        _search.check_distribution(spec, maps["random"].val_pos[key], f"random.{key}", errors)
    _check_overlaps(maps, errors)
    if not maps["grid"] and not maps["random"]:
        errors.add("nothing to sweep", root.pos, expected="a `grid:` and/or `random:` mapping",
                   hint="grid: {optimizer.lr: [0.001, 0.01]}")
    _check_scalars(root, at, errors)
    search = _search.check_search(root, at, errors)
    if not errors:
        _search.check_conditions(maps["grid"], maps["random"], errors)
    errors.raise_if_any()
    located = [m for m in maps.values() if isinstance(m, YMap)]
    return Sweep(name=root.get("name") or path.stem, source=path, experiment=exp_path,
                 fixed=_plain(maps["set"]), grid=_plain(maps["grid"]),
                 random=_plain(maps["random"]),
                 samples=root.get("samples") or DEFAULT_SAMPLES, seed=root.get("seed") or 0,
                 output=output or root.get("output") or "runs", search=search,
                 positions={str(k): m.val_pos[k] for m in located for k in m},
                 key_positions={str(k): m.key_pos[k] for m in located for k in m},
                 size_pos=at("grid" if maps["grid"] else "random", value=False),
                 places={str(k): at(k) for k in root})


def _experiment_path(root, path: Path, at, errors: ErrorCollector) -> Path | None:
    """The sweep's experiment file, relative to the sweep file; None (and an error) if bad."""
    exp_path = None
    if "experiment" not in root:
        errors.add("a sweep needs `experiment`", root.pos, expected="experiment: path/to/experiment.yaml")
    elif not isinstance(root["experiment"], str):
        errors.add("`experiment` is a path", at("experiment"), "experiment",
                   expected="a path relative to the sweep file", found=repr(root["experiment"]))
    else:
        exp_path = Path(root["experiment"])
        if not exp_path.is_absolute():
            exp_path = path.parent / exp_path
        if not exp_path.exists():
            errors.add("experiment file not found", at("experiment"), "experiment",
                       expected="a path relative to the sweep file", found=str(exp_path))
    return exp_path if exp_path is not None and exp_path.exists() else None


def _check_scalars(root, at, errors: ErrorCollector) -> None:
    """samples and seed are integers; name is a folder name and output a folder."""
    for key, kind in (("samples", int), ("seed", int)):
        value = root.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)
                                  or key == "samples" and value < 1):
            errors.add(f"`{key}` is {'a positive' if key == 'samples' else 'an'} integer",
                       at(key), key, found=repr(value))
        elif key == "samples" and value is not None and value > MAX_POINTS:
            errors.add(f"{value:,} samples is more than the {MAX_POINTS:,} points a sweep "
                       "holds", at(key), key, expected=f"at most {MAX_POINTS:,}",
                       found=f"{value:,}", hint="a random search rarely needs more than "
                       "a few dozen draws")
    for key in ("name", "output"):
        value = root.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()
                                  or key == "name" and ("/" in value or value.startswith("."))):
            errors.add(f"`{key}` is {'a folder name' if key == 'name' else 'a folder'}",
                       at(key), key, found=repr(value))


_OVERLAP_HINTS = {
    "set": "every point would take the swept values, never the one in `set`: remove it there",
    "grid": "the random draws would replace the grid values: keep it in `grid` or in `random`",
    "part": "it replaces the whole mapping, the earlier key inside it included: keep one"}


def _check_overlaps(maps: dict, errors: ErrorCollector) -> None:
    """A key in two of set, grid and random would silently take the later one's values, and a
    mapping applied after a key inside it (`optimizer.lr`, then `optimizer`) would drop it."""
    seen: dict[str, tuple[str, Pos | None]] = {}
    for section in ("set", "grid", "random"):
        for key in map(str, maps[section]):
            pos = getattr(maps[section], "key_pos", {}).get(key)
            other = next((k for k in seen if f"{k}.".startswith(f"{key}.")), None)
            if other is not None:
                (where, at), same = seen[other], other == key
                errors.add(f"`{key}` is also in `{where}`" if same else
                           f"`{key}` overlaps `{other}`", pos, f"{section}.{key}",
                           expected="each key in one of set, grid and random" if same else
                           "a mapping before the keys inside it",
                           found=f"{where}.{other}{f' (line {at.line})' if at else ''} and "
                                 f"{section}.{key}", hint=_OVERLAP_HINTS[where if same else "part"])
            seen[key] = (section, pos)


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    return x


def check_points(sweep: Sweep, points: list[Point]) -> None:
    """Every point's overrides against the experiment before anything trains, loaded as
    `archspec train --set ...` loads them: a typo or a bad value fails at once, at its sweep
    file line. A key that no point reads (an option of another optimizer) is refused too."""
    from archspec.errors import ArchspecError, SpecErrors
    from archspec.experiment import load as experiment

    unread, read = {}, set()   # key -> its error; the keys some point reads
    for p in points:
        try:
            loaded = experiment.load(sweep.experiment, p.set_args())
        except ArchspecError as exc:
            if exc.exit_code != 2:
                raise
            raise SpecErrors([_in_sweep_file(sweep, e, p) for e in exc.located()]) from None
        for k in p.overrides:   # a conditional key counts where its condition holds
            e = _unread(sweep, k, loaded)
            if e is None:
                read.add(k)
            else:
                unread.setdefault(k, e)
    (errors := ErrorCollector()).errors.extend(e for k, e in unread.items() if k not in read)
    errors.raise_if_any()


def _in_sweep_file(sweep: Sweep, error, point: Point):
    """An error about an override points at its sweep file line (the key's, when unknown)."""
    where = str(error.pos.file) if error.pos else ""
    key = where.removeprefix("--set ").partition("=")[0]
    if not where.startswith("--set ") or key not in sweep.positions:
        return error
    on_key = error.message.startswith("unknown") and any(
        f"'{part}'" in error.message for part in key.split("."))
    error.pos = sweep.key_positions[key] if on_key else sweep.positions[key]
    error.path = f"{key} (point {point.index})"
    return error


def objective(sweep: Sweep) -> tuple[str, str]:
    """(metric, direction) of the search, checked against the experiment's heads: the
    default metric is val.accuracy, or val.loss when no head is a classifier."""
    from archspec.errors import ArchspecError, SpecErrors
    from archspec.experiment import load as experiment
    from archspec.experiment.expect import check_expect_heads, classifier_heads

    loaded = experiment.load(sweep.experiment, Point(0, sweep.fixed, {}, "").set_args())
    metric, direction = sweep.search.resolved(
        bool(classifier_heads(loaded.graph, loaded.exp.loss)))
    try:
        check_expect_heads({metric: ">= 0"}, loaded.graph, loaded.exp.loss)
    except ArchspecError as exc:
        at, errors = sweep.places.get("metric"), exc.located()
        for e in errors:
            e.pos, e.path = at, "metric"
            e.hint = e.hint if at else "set `metric:` (e.g. metric: val.loss) in the sweep file"
        raise SpecErrors(errors) from None
    return metric, direction


def write_manifest(sweep: Sweep) -> None:
    """<sweep folder>/sweep.json: the points and their ids, for people and tools (a sweep
    of more than MAX_POINTS, run point by point, lists none: only their count)."""
    folder = sweep.folder
    folder.mkdir(parents=True, exist_ok=True)
    data = {"name": sweep.name, "source": str(sweep.source), "experiment": str(sweep.experiment),
            "count": sweep.count}
    if sweep.count <= MAX_POINTS:
        data["points"] = [{"index": p.index, "id": p.id, "overrides": p.overrides,
                           "varying": p.varying} for p in sweep.points()]
    from archspec.runs.files import write_text  # whole, or a clean error on a full disk

    write_text(folder / "sweep.json", json.dumps(data, indent=2) + "\n")


# --- running ---------------------------------------------------------------------------------
def point_status(run_dir: Path) -> str | None:
    """The last summary status of a point's run; None when it never started."""
    from archspec.runs.lock import LOCK_NAME
    from archspec.runs.records import read_metrics

    if not run_dir.exists() or all(p.name == LOCK_NAME for p in run_dir.iterdir()):
        return None  # (a point's folder holds only its lock until its set-up is written)
    summaries = [r for r in read_metrics(run_dir) if r.get("split") == "summary"]
    return str(summaries[-1].get("status")) if summaries else "running/killed"


def parallel_hint(sweep: Sweep, points: list[Point], file: Path) -> list[str]:
    n = len(points)
    out = f" --output {sweep.output}" if sweep.output != "runs" else ""
    return [
        f"# {n} points; each command below runs one of them (0..{n - 1}):",
        f"parallel -j 4 archspec sweep {file}{out} --point {{}} ::: $(seq 0 {n - 1})",
        f"sbatch --array=0-{n - 1} --wrap 'archspec sweep {file}{out} --point $SLURM_ARRAY_TASK_ID'",
        f"# then the table: archspec sweep {file}{out} --summary",
    ]


__all__ = ["Sweep", "Point", "DONE", "load_sweep", "check_points", "objective", "write_manifest",
           "point_status", "parallel_hint", "point_id"]
