"""Checkpoints through orbax: `latest` (for resume) and `best` (by validation metric).

Orbax writes each checkpoint to a temporary folder and renames it when complete, so a
process killed mid-write leaves the previous checkpoint intact and loadable. A checkpoint
stores the training state plus where in the data it stopped (epoch, batch)."""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np


class CheckpointError(Exception):
    def __init__(self, message: str, hint: str | None = None, mismatch: bool = False):
        super().__init__(message)
        self.hint, self.mismatch = hint, mismatch


def _manager(directory: Path, keep: int):
    import logging

    import orbax.checkpoint as ocp

    logging.getLogger("absl").setLevel(logging.CRITICAL)  # archspec reports problems itself

    opts = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                        enable_async_checkpointing=False,
                                        cleanup_tmp_directories=True)
    return ocp.CheckpointManager(directory.resolve(), options=opts,
                                 item_handlers=ocp.StandardCheckpointHandler())


class Checkpoints:
    def __init__(self, run_dir: Path, keep: int = 2):
        self.latest = _manager(run_dir / "checkpoints" / "latest", keep)
        self.best = _manager(run_dir / "checkpoints" / "best", 1)

    def save(self, which: str, state, position: dict) -> None:
        import orbax.checkpoint as ocp

        mngr = getattr(self, which)
        step = int(jax.device_get(state.step))
        if step in mngr.all_steps():  # already saved at this very step (a stop right after)
            return
        payload = {"state": state, "position": {k: np.asarray(v, np.int32) for k, v in position.items()}}
        mngr.save(step, args=ocp.args.StandardSave(payload), force=True)
        mngr.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def restore(run_dir: Path, template_state, which: str = "latest", warn=None):
    """Restore (state, position) from the newest readable checkpoint of `which`. A newest
    checkpoint that cannot be read (corrupted on disk) falls back to the one before it."""
    import orbax.checkpoint as ocp

    mngr = _manager(Path(run_dir) / "checkpoints" / which, 2)
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


def _restore_step(mngr, step, abstract, run_dir):
    import orbax.checkpoint as ocp

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
