"""Run folders: runs/<experiment>/<timestamp>/ with everything needed to reproduce the run.

    config.yaml         the fully resolved experiment (overrides applied), re-runnable from
                        any folder: the architecture is the copy beside it (or inline),
                        data paths are absolute
    architecture.yaml   the architecture text as trained
    sources.json        size and sha256 of the data files (and the experiment file)
    env.json            versions, devices, git commit, seed
    metrics.jsonl       one line per logged step or evaluation
    attempts.json       every attempt (restarts after a collapse or divergence)
    best.json           the best validation score so far
    events/             TensorBoard
    checkpoints/        orbax: latest/ and best/, each step with a sha256 list of its files

Everything archspec writes here is written whole (a temporary file renamed over the old
one) or appended and fsynced, and never through a symbolic link.
"""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import errno
import hashlib
import json
import os
import platform
import stat
import subprocess
from pathlib import Path

import yaml

from archspec.errors import ArchspecError


class RunError(ArchspecError):
    """A run folder that cannot be used as asked (exit 1)."""

    exit_code = 1


# ---------------------------------------------------------------- the folder of a new run

def name_problem(name) -> str | None:
    """Why `name` cannot be one folder name inside `output` (None: it can)."""
    if not isinstance(name, str) or not name.strip():
        return "is empty"
    if name in (".", ".."):
        return f"is '{name}'"
    if any(sep in name for sep in ("/", "\\", os.sep, os.altsep or "/")):
        return "contains a path separator"
    if "\x00" in name:
        return "contains a NUL character"
    return None


NAME_HINT = "letters, digits, '-', '_', '.'; no '/', '\\' or '..'"


def new_run_dir(output: str, experiment: str) -> Path:
    """A new folder output/<experiment>/<timestamp> that no other training uses."""
    shared = os.environ.get("ARCHSPEC_RUN_NAME")
    for what, value in (("the experiment name", experiment), ("ARCHSPEC_RUN_NAME", shared)):
        problem = name_problem(value) if value or what != "ARCHSPEC_RUN_NAME" else None
        if problem:
            raise RunError(f"{what} {value!r} {problem}: a run must stay inside {output}/",
                           f"use one folder name: {NAME_HINT}")
    base = Path(output) / experiment
    if shared:
        return _shared_run_dir(base / shared, shared)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = base / stamp, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base / f"{stamp}-{n}"
        except OSError as exc:
            raise RunError(f"cannot create the run folder {path}: {exc.strerror or exc}",
                           "choose a writable folder with --set output=DIR") from None


def _shared_run_dir(path: Path, shared: str) -> Path:
    # Several processes of one multi-host run must agree on the folder: the launcher sets
    # ARCHSPEC_RUN_NAME for all of them (see README, "Many devices and hosts"). The first
    # to arrive creates it; the others join it only while it holds no training results and
    # was made by the same launch. Anything else is a leftover variable meeting an old run.
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        _check_joinable(path, shared)
        return path
    except OSError as exc:
        raise RunError(f"cannot create the run folder {path}: {exc.strerror or exc}",
                       "choose a writable folder with --set output=DIR") from None
    write_json(path / LAUNCH_FILE, {"launch": launch_id(), "processes": _process_count()})
    return path


LAUNCH_FILE = "launch.json"


def launch_id() -> str:
    """What the processes of one multi-host launch share (and a later launch does not)."""
    keys = ("ARCHSPEC_LAUNCH_ID", "SLURM_JOB_ID", "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES")
    return "|".join(f"{k}={os.environ[k]}" for k in keys if os.environ.get(k))


def _check_joinable(path: Path, shared: str) -> None:
    refuse = None
    if _process_count() < 2:
        refuse = "already exists"
    elif has_results(path):
        refuse = "already holds training results"
    else:
        marker = _read_json(path / LAUNCH_FILE)
        if isinstance(marker, dict) and marker.get("launch") != launch_id():
            refuse = "belongs to another launch"
    if refuse:
        raise RunError(f"the run folder {path} named by ARCHSPEC_RUN_NAME={shared} {refuse}; "
                       "a new training never reuses a run folder",
                       f"unset ARCHSPEC_RUN_NAME (or give a new one) for a new run, or "
                       f"continue that run with `archspec train --resume {path}`")


def has_results(run_dir: Path) -> bool:
    """Whether training has written anything into the folder yet."""
    run_dir = Path(run_dir)
    if any(os.path.lexists(run_dir / n) for n in ("metrics.jsonl", "attempts.json", "best.json")):
        return True
    ckpts = run_dir / "checkpoints"
    return any(p.name.isdigit() for sub in ("latest", "best") if (ckpts / sub).is_dir()
               for p in (ckpts / sub).iterdir())


def _process_count() -> int:
    import jax
    return jax.process_count()


# ---------------------------------------------------------------- writing inside a run folder

RUN_FILES = ("config.yaml", "architecture.yaml", "env.json", "sources.json", "metrics.jsonl",
             "attempts.json", "best.json", "checkpoints", "checkpoints/latest",
             "checkpoints/best", "events")
LINK_HINT = "a run folder holds its own files: replace the link with the file it points to"


def refuse_link(path: Path) -> None:
    """Files of a run are never written through a symbolic link: the link's target (a file
    of another run, or anything else) would be overwritten. A link to a device (/dev/null,
    /dev/full) overwrites nothing and is let through."""
    path = Path(path)
    if not path.is_symlink():
        return
    try:
        if stat.S_ISCHR(os.stat(path).st_mode):
            return
    except OSError:
        pass
    raise RunError(f"refusing to write {path}: it is a symbolic link (to "
                   f"{os.readlink(path)})", LINK_HINT)


def refuse_links(run_dir: Path) -> None:
    """Every file and folder training writes in `run_dir`, checked before it starts."""
    for name in RUN_FILES:
        refuse_link(Path(run_dir) / name)


def _is_device_link(path: Path) -> bool:
    try:
        return path.is_symlink() and stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def write_text(path: Path, text: str, hint: str = "check free disk space and permissions") -> None:
    """Write a run file whole: a temporary file beside it, fsynced, renamed over it (a kill
    leaves the old or the new content, never half), never through a symbolic link."""
    path = Path(path)
    refuse_link(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if _is_device_link(path):
            with open(path, "w") as f:
                f.write(text)
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RunError(f"cannot write {path}: {exc.strerror or exc}", hint) from None


def write_json(path: Path, value, hint: str = "check free disk space and permissions") -> None:
    write_text(path, json.dumps(value, indent=2), hint)


def append_line(path: Path, line: str, hint: str) -> None:
    """Append one line, flushed and fsynced, never through a symbolic link."""
    path = Path(path)
    refuse_link(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (0 if _is_device_link(path) else _NOFOLLOW)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a link after the check
            raise RunError(f"refusing to write {path}: it is a symbolic link", LINK_HINT) from None
        raise RunError(f"cannot write {path}: {exc.strerror or exc}", hint) from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror or exc}", hint) from None


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _read_json(path: Path):
    """The JSON in `path`; None when absent; a `_Damaged` (saying why) when unreadable."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return _Damaged(getattr(exc, "strerror", None) or str(exc).splitlines()[0])
    try:
        return json.loads(text)
    except ValueError as exc:
        return _Damaged("not JSON: " + str(exc).splitlines()[0] if text.strip() else "empty")


class _Damaged:
    def __init__(self, why: str):
        self.why = why


def _warn(message: str, hint: str | None = None) -> None:
    from archspec.ui.render import print_problem
    print_problem("warning", message, hint)


# ---------------------------------------------------------------- the run's set-up

PATH_OPTIONS = {"idx": ("labels", "test_images", "test_labels")}  # data.options naming files
SOURCES_FILE = "sources.json"


def portable_config(config: dict, cwd: Path | None = None) -> dict:
    """The experiment as it re-runs from any folder: the architecture is the run's own copy
    (or inline), data paths are absolute."""
    cfg = copy.deepcopy(config)
    cwd = Path(cwd or os.getcwd())
    if isinstance(cfg.get("architecture"), str):
        cfg["architecture"] = "architecture.yaml"  # beside config.yaml in the run folder
    data = cfg.get("data")
    if isinstance(data, dict):
        if isinstance(data.get("path"), str) and data["path"]:
            data["path"] = _absolute(data["path"], cwd)
        options = data.get("options") if isinstance(data.get("options"), dict) else {}
        for key in PATH_OPTIONS.get(data.get("name"), ()):
            value = options.get(key)
            if isinstance(value, str) and value:
                beside = Path(data["path"]).parent if data.get("path") else None
                options[key] = _absolute(value, cwd, beside)
    if isinstance(cfg.get("output"), str):
        cfg["output"] = _absolute(cfg["output"], cwd)
    return cfg


def _absolute(value: str, cwd: Path, beside: Path | None = None) -> str:
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    if beside is not None and not (cwd / p).exists() and (beside / p).exists():
        return os.path.normpath(beside / p)
    return os.path.normpath(cwd / p)


def data_files(config: dict) -> list[tuple[str, str]]:
    """(key, absolute path) of every file or folder the data section reads."""
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    out = []
    if isinstance(data.get("path"), str) and data["path"]:
        out.append(("data.path", data["path"]))
    options = data.get("options") if isinstance(data.get("options"), dict) else {}
    for key in PATH_OPTIONS.get(data.get("name"), ()):
        if isinstance(options.get(key), str) and options[key]:
            out.append((f"data.options.{key}", options[key]))
    return out


def fingerprint(path) -> dict | None:
    """Size and sha256 of a file; of a folder: file count, total size and a hash of the
    names and sizes in it. None when it does not exist."""
    p = Path(path)
    if p.is_file():
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return {"size": p.stat().st_size, "sha256": h.hexdigest()}
    if p.is_dir():
        h, total, count = hashlib.sha256(), 0, 0
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            size = f.stat().st_size
            h.update(f"{f.relative_to(p)}\0{size}\n".encode())
            total, count = total + size, count + 1
        return {"size": total, "files": count, "sha256": h.hexdigest()}
    return None


def write_setup(run_dir: Path, config: dict, arch_text: str, seed: int,
                experiment_file: str | Path | None = None) -> None:
    """config.yaml (re-runnable from any folder), architecture.yaml, env.json, and
    sources.json: the fingerprints of the experiment file and of every data file, so a
    resume or an evaluation can say when one was moved or changed."""
    run_dir = Path(run_dir)
    portable = portable_config(config)
    sources = {"data": [{"key": key, "path": path, **(fingerprint(path) or {})}
                        for key, path in data_files(portable)]}
    if experiment_file is not None:
        path = os.path.abspath(experiment_file)
        sources["experiment"] = {"path": path, **(fingerprint(path) or {})}
    hint = "check free disk space and permissions"
    write_text(run_dir / "config.yaml", yaml.safe_dump(portable, sort_keys=False), hint)
    write_text(run_dir / "architecture.yaml", arch_text, hint)
    write_json(run_dir / SOURCES_FILE, sources, hint)
    write_json(run_dir / "env.json", environment(seed), hint)


def changed_sources(run_dir: Path) -> list[str]:
    """One sentence per file recorded in sources.json that has moved or changed since."""
    recorded = _read_json(Path(run_dir) / SOURCES_FILE)
    if not isinstance(recorded, dict):
        return []
    entries = [("data file", e) for e in recorded.get("data") or [] if isinstance(e, dict)]
    if isinstance(recorded.get("experiment"), dict):
        entries.append(("experiment file", recorded["experiment"]))
    out = []
    for what, entry in entries:
        path, was = entry.get("path"), entry.get("sha256")
        if not isinstance(path, str) or not was:
            continue
        key = f" ({entry['key']})" if entry.get("key") else ""
        now = fingerprint(path)
        if now is None:
            out.append(f"{what} {path}{key} is gone: moved or deleted since this run started")
        elif now["sha256"] != was:
            size = (f"{entry.get('size')} bytes then, {now['size']} now"
                    if entry.get("size") != now["size"] else "same size, other contents")
            out.append(f"{what} {path}{key} changed since this run started ({size})")
    return out


def environment(seed: int) -> dict:
    import flax
    import jax
    import optax

    import archspec

    return {
        "archspec": archspec.__version__, "python": platform.python_version(),
        "jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__,
        "platform": platform.platform(), "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()], "process_count": jax.process_count(),
        "git_commit": _git_commit(), "seed": seed,
        "started": dt.datetime.now().isoformat(timespec="seconds"),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=os.getcwd())
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class MetricsLog:
    """Append-only JSON lines, flushed and fsynced per record so a kill loses nothing written."""

    HINT = "check free disk space; the last checkpoint is intact"

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = None
        self._resumed = None  # (restored step, step and epoch of the last train record kept)
        refuse_links(run_dir)
        if tensorboard:
            from tensorboardX import SummaryWriter
            self.writer = SummaryWriter(str(Path(run_dir) / "events"))

    def truncate_after(self, step: int) -> None:
        """On resume: drop records of steps the restored checkpoint had not reached, and
        remember where training restarts so the epoch it restarts in is marked partial."""
        if not self.path.is_file():  # absent, or not a regular file (nothing to keep)
            self._resumed = (step, 0, None)
            return
        records = _records(self.path, warn=True)
        keep = [r for r in records if _step(r) <= step]
        trains = [r for r in keep if r.get("split") == "train"]
        self._resumed = (step, _step(trains[-1]) if trains else 0,
                         trains[-1].get("epoch") if trains else None)
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in keep), self.HINT)

    def log(self, record: dict) -> None:
        if _process_index():  # one writer per run: process 0
            return
        if record.get("split") == "train" and self._resumed is not None:
            record = self._mark_resumed(record)
        append_line(self.path, json.dumps(record) + "\n", self.HINT)
        if self.writer:
            split = record.get("split", "train")
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.writer.add_scalar(f"{split}/{k}", v, record.get("step", 0))

    def _mark_resumed(self, record: dict) -> dict:
        """The first epoch after a resume: partial when it started mid-way (after a
        mid-epoch checkpoint, or after a stop); a record of the same epoch from before the
        stop is partial too."""
        restored, last_step, last_epoch = self._resumed
        self._resumed = None
        same_epoch = last_epoch is not None and record.get("epoch") == last_epoch
        if not (restored > last_step or same_epoch):
            return record
        if same_epoch:
            records = _records(self.path)
            for r in reversed(records):
                if r.get("split") == "train" and r.get("epoch") == last_epoch:
                    r["partial"] = True
                    break
            write_text(self.path, "".join(json.dumps(r) + "\n" for r in records), self.HINT)
        return {**record, "partial": True}

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def _process_index() -> int:
    import jax
    return jax.process_index()


def _step(record: dict) -> int:
    try:
        return int(record.get("step", 0))
    except (TypeError, ValueError):
        return 10**12


def _records(path: Path, warn: bool = False) -> list[dict]:
    """The records of a metrics.jsonl. A last line cut by a kill is dropped quietly; a
    damaged line before it is dropped with a warning (when `warn`)."""
    try:
        lines = Path(path).read_bytes().decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None
    out, bad = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and _step(record) < 10**12:
            out.append(record)
        elif number < len(lines):
            bad.append(number)
    if bad and warn:
        _warn(f"{path}: {len(bad)} damaged line{'s' if len(bad) > 1 else ''} dropped "
              f"(line {', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''})",
              "the metrics of those steps are lost; the checkpoints are not affected")
    return out


def read_metrics(run_dir: Path) -> list[dict]:
    return _records(Path(run_dir) / "metrics.jsonl")


# ---------------------------------------------------------------- attempts and best score

FAILED = ("collapsed", "diverged")


def read_attempts(run_dir: Path) -> list:
    """The failed attempts of a run (attempts.json): how many restarts it has used, and so
    the seed and learning rate of the next one. A damaged file is an error, never a guess."""
    p = Path(run_dir) / "attempts.json"
    refuse_link(p)
    value = _read_json(p)
    if value is None:
        return []
    why = value.why if isinstance(value, _Damaged) else None
    if why is None and not (isinstance(value, list) and all(
            isinstance(a, dict) and isinstance(a.get("outcome"), str) for a in value)):
        why = "not a list of attempts"
    if why:
        raise RunError(f"{p} is damaged ({why})",
                       "it counts the restarts of this run (their seeds and learning rates): "
                       "restore it, or delete it to continue as the first attempt")
    return [a for a in value if a["outcome"] in FAILED]


def write_attempts(run_dir: Path, attempts: list) -> None:
    write_json(Path(run_dir) / "attempts.json", attempts)


def read_best(run_dir: Path):
    """The best validation score so far (best.json). A damaged file is rebuilt from the
    best checkpoint's step and its validation record, with a warning."""
    p = Path(run_dir) / "best.json"
    refuse_link(p)
    value = _read_json(p)
    if value is None:
        return None
    if isinstance(value, dict) and isinstance(value.get("score"), (int, float)) \
            and not isinstance(value.get("score"), bool):
        return float(value["score"])
    why = value.why if isinstance(value, _Damaged) else "no score in it"
    score = _best_from_metrics(Path(run_dir))
    if score is None:
        _warn(f"{p} is damaged ({why}); the next validation replaces the best checkpoint",
              "restore best.json to keep the best checkpoint")
    else:
        _warn(f"{p} is damaged ({why}); using the score {score:g} of the best checkpoint's "
              "validation record in metrics.jsonl")
    return score


def _best_from_metrics(run_dir: Path):
    best = run_dir / "checkpoints" / "best"
    steps = [int(q.name) for q in best.iterdir() if q.name.isdigit()] if best.is_dir() else []
    if not steps:
        return None
    for r in reversed(read_metrics(run_dir)):
        if r.get("split") == "val" and _step(r) == max(steps):
            return score_of(r)
    return None


def score_of(record: dict):
    """The score the best checkpoint is chosen by, from a logged validation record: the
    first head's accuracy, else minus the loss."""
    acc = [v for k, v in record.items() if k.startswith("accuracy_")]
    if acc:
        return float(acc[0])
    return -float(record["loss"]) if isinstance(record.get("loss"), (int, float)) else None


def write_best(run_dir: Path, score: float, step: int) -> None:
    write_json(Path(run_dir) / "best.json", {"score": score, "step": step})
