"""The run's set-up: config.yaml re-runnable from any folder, the architecture as trained,
the environment, and the fingerprints of the files it read (sources.json), so a resume or
an evaluation can say when one moved or changed."""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import os
import platform
import subprocess
from pathlib import Path

import yaml

from archspec.runs.files import read_json, write_json, write_text

PATH_OPTIONS = {"idx": ("labels", "test_images", "test_labels")}  # data.options naming files
SOURCES_FILE = "sources.json"


def portable_config(config: dict, cwd: Path | None = None) -> dict:
    """The experiment as it re-runs from any folder: the architecture is the run's own copy
    (or inline), data paths and `init: {from:}` are absolute."""
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
    init = cfg.get("init")
    if isinstance(init, dict) and isinstance(init.get("from"), str) and init["from"]:
        init["from"] = _absolute(init["from"], cwd)
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
    recorded = read_json(Path(run_dir) / SOURCES_FILE)
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
