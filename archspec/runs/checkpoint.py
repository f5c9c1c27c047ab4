"""Checkpoints through orbax: `latest` (for resume) and `best` (by validation metric).

Orbax writes each checkpoint to a temporary folder and renames it when complete, so a
process killed mid-write leaves the previous checkpoint intact and loadable. A checkpoint
stores the training state plus where in the data it stopped (epoch, batch).

Once orbax has finished a step, archspec writes the sha256 of every file in it to
`<step>/archspec.sha256` (atomically); a restore checks them first, so a checkpoint damaged
on disk (flipped bytes, a truncated file) is never loaded: the one before it is used, with a
warning. Steps written before checksums existed load unchecked."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import jax
import numpy as np

from archspec.errors import ArchspecError


class CheckpointError(ArchspecError):
    """A checkpoint that cannot be read or written (exit 1)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, mismatch: bool = False):
        super().__init__(message, hint)
        self.mismatch = mismatch


MANIFEST = "archspec.sha256"
LINK_HINT = "a run folder holds its own checkpoints: replace the link with the folder it points to"


def _manager(directory: Path, keep: int, write: bool = True):
    """An orbax manager of one checkpoint folder. Writing managers create the folder and
    clear orbax's temporaries (so never through a symbolic link); reading ones change
    nothing on disk."""
    import logging

    import orbax.checkpoint as ocp

    logging.getLogger("absl").setLevel(logging.CRITICAL)  # archspec reports problems itself

    if write:
        for p in (directory.parent, directory):
            if p.is_symlink():
                raise CheckpointError(f"refusing to write {p}: it is a symbolic link (to "
                                      f"{os.readlink(p)})", LINK_HINT)
    # Writing is asynchronous: save() returns once the state is copied to host memory and
    # training goes on while orbax writes (into a temporary folder, renamed when complete).
    # With several processes every one of them takes part in each save and restore, meeting
    # the others at named barriers; `latest` and `best` can be writing the same step at once,
    # so each folder's manager names its barriers apart.
    sync = ocp.options.MultiprocessingOptions(
        barrier_sync_key_prefix=f"archspec-{directory.name}-{'write' if write else 'read'}")
    opts = ocp.CheckpointManagerOptions(max_to_keep=keep if write else None, create=write,
                                        enable_async_checkpointing=write,
                                        cleanup_tmp_directories=write,
                                        read_only=not write, multiprocessing_options=sync)
    return ocp.CheckpointManager(directory.resolve(), options=opts,
                                 item_handlers=ocp.StandardCheckpointHandler())


class Checkpoints:
    """The run's `latest` and `best` checkpoints. At most one write per folder is in flight:
    a save first finishes the previous one (and writes its checksum list), and close()
    finishes all. A crash mid-write leaves only a temporary folder; the last complete
    checkpoint stays the newest one."""

    def __init__(self, run_dir: Path, keep: int = 2):
        self._pending: dict[str, tuple[Path, object]] = {}
        self.latest = _manager(run_dir / "checkpoints" / "latest", keep)
        try:
            self.best = _manager(run_dir / "checkpoints" / "best", 1)
        except BaseException:
            self.latest.close()
            raise

    def save(self, which: str, state, position: dict, then=None) -> None:
        """Start writing `state` at its step; `then()` runs once it is complete on disk."""
        import orbax.checkpoint as ocp

        mngr = getattr(self, which)
        step = int(jax.device_get(state.step))
        self._finish(which)  # one write in flight per folder; its step now counts as saved
        if step in mngr.all_steps():  # already saved at this very step (a stop right after)
            return
        payload = {"state": state, "position": {k: np.asarray(v, np.int32) for k, v in position.items()}}
        mngr.save(step, args=ocp.args.StandardSave(payload), force=True)
        self._pending[which] = (Path(mngr.directory) / str(step), then)

    def _finish(self, which: str) -> None:
        getattr(self, which).wait_until_finished()
        step_dir, then = self._pending.pop(which, (None, None))
        if step_dir is not None and jax.process_index() == 0:
            write_manifest(step_dir)
        if then is not None:
            then()

    def wait(self) -> None:
        """Every save so far complete on disk, with its checksum list."""
        for which in ("latest", "best"):
            self._finish(which)

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.latest.close()
            self.best.close()


def restore(run_dir: Path, template_state, which: str = "latest", warn=None):
    """Restore (state, position) from the newest readable checkpoint of `which`. A newest
    checkpoint that cannot be read (corrupted on disk) falls back to the one before it."""
    import orbax.checkpoint as ocp

    directory = Path(run_dir) / "checkpoints" / which
    if not directory.is_dir():
        raise CheckpointError(f"no complete '{which}' checkpoint in {run_dir}",
                              "the run stopped before its first checkpoint; start it again")
    mngr = _manager(directory, 2, write=False)
    try:
        steps = sorted(mngr.all_steps(), reverse=True)
        if not steps:
            raise CheckpointError(f"no complete '{which}' checkpoint in {run_dir}",
                                  "the run stopped before its first checkpoint; start it again")
        abstract = {"state": jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct,
                                                    template_state),
                    "position": {"epoch": np.zeros((), np.int32),
                                 "batch": np.zeros((), np.int32)}}
        first_error = None
        for step in steps:
            try:
                payload = _restore_step(mngr, step, abstract, run_dir)
            except CheckpointError as exc:
                if exc.mismatch:  # the architecture changed: older checkpoints will not fit either
                    raise
                first_error = first_error or exc
                continue
            if step != steps[0] and warn:
                warn(f"checkpoint {steps[0]} cannot be read ({first_error}); "
                     f"using checkpoint {step}")
            return payload["state"], {k: int(v) for k, v in payload["position"].items()}
        raise first_error
    finally:
        mngr.close()


def has_checkpoint(run_dir: Path, which: str = "latest") -> bool:
    """Whether a run folder holds a finished checkpoint step of `which` (a run killed during
    its first save leaves the folder without one: it starts over, it cannot resume)."""
    directory = Path(run_dir) / "checkpoints" / which
    return directory.is_dir() and any(p.name.isdigit() for p in directory.iterdir())


def write_manifest(step_dir: Path) -> None:
    """sha256 of every file of a finished checkpoint step, written whole (temporary + rename)."""
    step_dir = Path(step_dir)
    if not step_dir.is_dir():
        return
    lines = [f"{_sha256(f)}  {f.relative_to(step_dir).as_posix()}\n" for f in _files(step_dir)]
    tmp = step_dir / f".{MANIFEST}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "w") as f:
        f.write("".join(lines))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, step_dir / MANIFEST)


def verify(step_dir: Path) -> str | None:
    """What is wrong with a checkpoint step's files against its manifest (None: nothing, or
    no manifest to check against)."""
    step_dir = Path(step_dir)
    manifest = step_dir / MANIFEST
    if not manifest.exists():
        return None
    try:
        text = manifest.read_bytes().decode("utf-8")
        listed = dict(reversed(line.split("  ", 1)) for line in text.splitlines() if line)
    except (OSError, UnicodeDecodeError, ValueError):
        return "its checksum list is damaged"
    if not listed or not all(len(h) == 64 for h in listed.values()):
        return "its checksum list is damaged"
    for name, digest in sorted(listed.items()):
        f = step_dir / name
        if not f.is_file():
            return f"file {name} is missing"
        if _sha256(f) != digest:
            return f"file {name} does not match its checksum"
    return None


def finished_step(run_dir: Path, setup) -> int | None:
    """The step of a run that is done: its newest 'latest' checkpoint has all the steps of
    `setup`, matches its checksums and the architecture, and the run's last summary says
    finished. None when there is anything left to do (or to check by restoring)."""
    from archspec.runs.records import read_metrics
    from archspec.engine.step import init_state

    latest = Path(run_dir) / "checkpoints" / "latest"
    steps = sorted((int(p.name) for p in latest.iterdir() if p.name.isdigit()),
                   reverse=True) if latest.is_dir() else []
    if not steps or steps[0] < setup.total_steps:
        return None
    step_dir = latest / str(steps[0])
    if not (step_dir / MANIFEST).exists() or verify(step_dir):
        return None
    summaries = [r for r in read_metrics(run_dir) if r.get("split") == "summary"]
    if not summaries or summaries[-1].get("status") != "finished":
        return None
    template = jax.eval_shape(lambda: init_state(setup.model, setup.graph, setup.tx,
                                                 setup.exp.seed, setup.dataset.example()))
    mngr = _manager(latest, 2, write=False)
    try:
        _check_metadata(mngr, steps[0], template)  # a changed architecture: its error
    finally:
        mngr.close()
    return steps[0]


def _files(step_dir: Path) -> list[Path]:
    return sorted(f for f in step_dir.rglob("*") if f.is_file() and not f.is_symlink()
                  and f.name not in (MANIFEST, f".{MANIFEST}.tmp"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _restore_step(mngr, step, abstract, run_dir):
    import orbax.checkpoint as ocp

    problem = verify(Path(mngr.directory) / str(step))
    if problem:
        raise CheckpointError(f"checkpoint {step} in {run_dir} cannot be read: {problem}",
                              "it may be corrupted or truncated")
    _check_metadata(mngr, step, abstract["state"])
    try:
        payload = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    except (ValueError, KeyError, TypeError) as exc:
        text = _first_line(exc)
        mismatch = "shape" in text.lower() or "structure" in text.lower() or "key" in text.lower()
        raise CheckpointError(f"checkpoint {step} does not match this architecture: {text}"
                              if mismatch else f"checkpoint {step} in {run_dir} cannot be read: "
                              f"{text}", "was the architecture changed after training?"
                              if mismatch else "it may be corrupted or truncated",
                              mismatch=mismatch) from None
    except Exception as exc:  # noqa: BLE001 - orbax/tensorstore raise many kinds
        raise CheckpointError(f"checkpoint {step} in {run_dir} cannot be read: "
                              f"{_first_line(exc)}", "it may be corrupted or truncated") from None
    _check_shapes(abstract["state"], payload["state"])
    return payload


def _names(tree, skip=("opt_state",)) -> dict:
    """{"params.hidden1.kernel": shape} for the parameters and statistics of a state tree."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        parts = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
        if parts and parts[0] == "state":
            parts = parts[1:]
        if parts and parts[0] in ("params", "batch_stats") and not set(parts) & set(skip):
            out[".".join(parts)] = tuple(getattr(leaf, "shape", ()))
    return out


def _check_metadata(mngr, step, template_state):
    """Compare the stored parameter names and shapes with the architecture's, before
    reading any data, so a mismatch names the parameter."""
    try:
        meta = mngr.item_metadata(step)
    except Exception:  # noqa: BLE001 - unreadable metadata: the restore reports it
        return
    if meta is None:
        return
    stored, wanted = _names(meta), _names(template_state)
    if not stored:
        return
    for name, shape in wanted.items():
        if name not in stored:
            raise CheckpointError(f"parameter {name} of the architecture is not in checkpoint "
                                  f"{step}", "was the architecture changed after training?",
                                  mismatch=True)
        if stored[name] != shape:
            raise CheckpointError(f"parameter {name} has shape {stored[name]} in checkpoint "
                                  f"{step} but {shape} in the architecture",
                                  "was the architecture changed after training?", mismatch=True)
    extra = sorted(set(stored) - set(wanted))
    if extra:
        raise CheckpointError(f"checkpoint {step} has parameter {extra[0]} that the "
                              "architecture does not", "was the architecture changed after "
                              "training?", mismatch=True)


def _check_shapes(expected, got):
    flat_e = jax.tree_util.tree_flatten_with_path(expected)[0]
    flat_g = dict(jax.tree_util.tree_flatten_with_path(got)[0])
    for path, leaf in flat_e:
        have = flat_g.get(path)
        if have is not None and tuple(have.shape) != tuple(leaf.shape):
            name = jax.tree_util.keystr(path)
            raise CheckpointError(f"parameter {name} has shape {tuple(have.shape)} in the "
                                  f"checkpoint but {tuple(leaf.shape)} in the architecture",
                                  "was the architecture changed after training?", mismatch=True)


def _first_line(exc) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def scored_checkpoint(run_dir: Path, which: str = "best") -> str:
    """The checkpoint a run is scored with: `which` ("best" or "latest"), "best" falling
    back to "latest" when the run has no best checkpoint (it never validated)."""
    if which == "best" and not (Path(run_dir) / "checkpoints" / "best").is_dir():
        return "latest"
    return which


def test_weights(run_dir: Path, state, warn=None):
    """(state, which, step) a finished run's test score is measured with. `state` is the
    final state, which is also the latest checkpoint."""
    which = scored_checkpoint(run_dir)
    if which == "best":
        state, _ = restore(run_dir, state, "best", warn=warn)
    return state, which, int(jax.device_get(state.step))
