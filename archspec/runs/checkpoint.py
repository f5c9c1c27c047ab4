"""Checkpoints through orbax: `latest` (for resume) and `best` (by validation metric).

Orbax writes each checkpoint step to a temporary folder and renames it when complete, so a
process killed mid-write leaves the previous checkpoint intact and loadable. A checkpoint
stores the training state plus where in the data it stopped (epoch, batch).

The sha256 of every file of a step is part of that commit: archspec writes the list
(`<step>/archspec.sha256`) into the temporary folder after orbax has written the data and
before the rename (`_SealedRename`), so a step under its final name carries its list. A
restore checks the list first: a step whose files do not match, or that has no list (not
verified), is never loaded; the newest verified step before it is used, with a warning."""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from pathlib import Path

import jax
import numpy as np

from archspec.errors import ArchspecError
from archspec.runs import quiet
from archspec.runs.checksums import verify, write_manifest
from archspec.runs.files import DISK_FULL, DiskFullError


class CheckpointError(ArchspecError):
    """A checkpoint that cannot be read or written (exit 1)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, mismatch: bool = False):
        super().__init__(message, hint)
        self.mismatch = mismatch


LINK_HINT = "a run folder holds its own checkpoints: replace the link with the folder it points to"


def _manager(directory: Path, keep: int, write: bool = True):
    """An orbax manager of one checkpoint folder. Writing managers create the folder and
    clear orbax's temporaries (so never through a symbolic link); reading ones change
    nothing on disk."""
    import logging

    import orbax.checkpoint as ocp

    logging.getLogger("absl").setLevel(logging.CRITICAL)  # archspec reports problems itself

    if write:
        quiet.install()
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
                                        read_only=not write, multiprocessing_options=sync,
                                        temporary_path_class=_sealed_rename() if write else None)
    return ocp.CheckpointManager(directory.resolve(), options=opts,
                                 item_handlers=ocp.StandardCheckpointHandler())


_SEALED = []


def _sealed_rename():
    """orbax's atomic-rename commit, with the checksum list written into the temporary
    folder once the data is complete and before the rename: the list is committed with the
    step, or neither is."""
    if _SEALED:
        return _SEALED[0]
    import orbax.checkpoint as ocp

    class _SealedRename(ocp.path.atomicity.AtomicRenameTemporaryPath):
        async def finalize(self, *args, **kwargs):
            final = Path(self.get_final())
            if not final.name.isdigit():  # an item inside the step: the step lists it
                return await super().finalize(*args, **kwargs)
            where = f"{final.parent.name}:{final.name}"
            kill_point("checksum", where)
            if jax.process_index() == 0:  # one writer of the list (the primary host renames)
                await asyncio.to_thread(write_manifest, Path(self.get()))
            kill_point("rename", where)
            await super().finalize(*args, **kwargs)
            kill_point("committed", where)

    _SEALED.append(_SealedRename)
    return _SealedRename


def kill_point(phase: str, where: str) -> None:
    """Fault injection for the test suite (tests/runs/test_checkpoint.py): with
    ARCHSPEC_FAULT_KILL=<phase>:<latest|best>:<step> the process is killed with SIGKILL at
    that point of that checkpoint, as `kill -9` or a power cut would end it."""
    if os.environ.get("ARCHSPEC_FAULT_KILL") == f"{phase}:{where}":
        os.kill(os.getpid(), signal.SIGKILL)


class Checkpoints:
    """The run's `latest` and `best` checkpoints. At most one write per folder is in flight:
    a save first finishes the previous one, and close() finishes all. A crash before a
    step's commit leaves only a temporary folder; the last committed step (with its checksum
    list) stays the newest one."""

    def __init__(self, run_dir: Path, keep: int = 2):
        self._pending: dict[str, tuple] = {}  # (step, then) of the write in flight
        self.failed = False
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
        kill_point("save", f"{which}:{step}")
        with self._writing(which, step):
            mngr.save(step, args=ocp.args.StandardSave(payload), force=True)
        kill_point("write", f"{which}:{step}")  # orbax is writing in the background
        self._pending[which] = (step, then)

    def _finish(self, which: str) -> None:
        step, then = self._pending.pop(which, (None, None))
        with self._writing(which, step):
            getattr(self, which).wait_until_finished()
        if then is not None:
            then()

    @contextlib.contextmanager
    def _writing(self, which: str, step):
        """A failed write (in orbax's thread, found here) is one archspec error naming the
        step; the committed steps before it are untouched."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - orbax/tensorstore raise many kinds
            self.failed = True
            quiet.after_failed_write()
            where = Path(getattr(self, which).directory) / ("" if step is None else str(step))
            raise write_failure(exc, where) from None

    def wait(self) -> None:
        """Every save so far committed on disk, with its checksum list."""
        for which in ("latest", "best"):
            self._finish(which)

    def close(self) -> None:
        """Finish the writes in flight; after a failed one, only let go of the managers."""
        try:
            if not self.failed:
                self.wait()
        finally:
            for mngr in (self.latest, self.best):
                with contextlib.suppress(Exception) if self.failed else contextlib.nullcontext():
                    mngr.close()


_DISK_FULL = re.compile(r"No space left on device|File too large|Disk quota exceeded|"
                        r"os_error_code='(28|27|122)'")


def write_failure(exc: BaseException, where: Path) -> ArchspecError:
    """The error for a checkpoint write that failed with `exc`: a full disk (ENOSPC, or
    EFBIG past a file-size limit, as TensorStore or the OS words it) says so in one line."""
    chain, e = [], exc
    while e is not None and len(chain) < 20:
        chain.append(e)
        e = e.__cause__ or e.__context__
    if any(isinstance(e, OSError) and e.errno in DISK_FULL or _DISK_FULL.search(str(e))
           for e in chain):
        return DiskFullError(where)
    return CheckpointError(f"cannot write checkpoint {where}: {_first_line(exc)}",
                           "check free disk space and permissions; the checkpoints "
                           "committed before it are intact")


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
    if verify(step_dir):
        return None
    summaries = [r for r in read_metrics(run_dir) if r.get("split") == "summary"]
    if not summaries or summaries[-1].get("status") != "finished":
        return None
    template = jax.eval_shape(lambda: init_state(setup.model, setup.graph, setup.tx,
                                                 setup.exp.seed, setup.dataset.example(),
                                                 ema=setup.exp.ema is not None))
    mngr = _manager(latest, 2, write=False)
    try:
        _check_metadata(mngr, steps[0], template)  # a changed architecture: its error
    finally:
        mngr.close()
    return steps[0]


def committed_steps(directory: Path) -> list[int]:
    """The steps orbax has committed in a checkpoint folder (renamed from their temporary
    folder), newest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted((int(p.name) for p in directory.iterdir() if p.name.isdigit() and p.is_dir()),
                  reverse=True)


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
    if which == "best" and not committed_steps(Path(run_dir) / "checkpoints" / "best"):
        return "latest"  # (a run that never validated has an empty best/ folder)
    return which


def test_weights(run_dir: Path, state, warn=None):
    """(state, which, step) a finished run's test score is measured with. `state` is the
    final state, which is also the latest checkpoint."""
    which = scored_checkpoint(run_dir)
    if which == "best":
        state, _ = restore(run_dir, state, "best", warn=warn)
    return state, which, int(jax.device_get(state.step))
