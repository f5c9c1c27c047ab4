"""Checkpoints through orbax: `latest` (for resume) and `best` (by validation metric).

Orbax writes each checkpoint to a temporary folder and renames it when complete, so a
process killed mid-write leaves the previous checkpoint intact and loadable. A checkpoint
stores the training state plus where in the data it stopped (epoch, batch)."""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np


class CheckpointError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def _manager(directory: Path, keep: int):
    import orbax.checkpoint as ocp

    opts = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                        enable_async_checkpointing=False,
                                        cleanup_tmp_directories=True)
    return ocp.CheckpointManager(directory.resolve(), options=opts)


class Checkpoints:
    def __init__(self, run_dir: Path, keep: int = 2):
        self.latest = _manager(run_dir / "checkpoints" / "latest", keep)
        self.best = _manager(run_dir / "checkpoints" / "best", 1)

    def save(self, which: str, state, position: dict) -> None:
        import orbax.checkpoint as ocp

        mngr = getattr(self, which)
        step = int(jax.device_get(state.step))
        payload = {"state": state, "position": {k: np.asarray(v, np.int32) for k, v in position.items()}}
        mngr.save(step, args=ocp.args.StandardSave(payload), force=True)
        mngr.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def restore(run_dir: Path, template_state, which: str = "latest"):
    """Restore (state, position) from the newest complete checkpoint of `which`."""
    import orbax.checkpoint as ocp

    mngr = _manager(Path(run_dir) / "checkpoints" / which, 2)
    try:
        step = mngr.latest_step()
        if step is None:
            raise CheckpointError(f"no complete '{which}' checkpoint in {run_dir}",
                                  "the run stopped before its first checkpoint; start it again")
        abstract = {"state": jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct,
                                                    template_state),
                    "position": {"epoch": np.zeros((), np.int32), "batch": np.zeros((), np.int32)}}
        try:
            payload = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {step} does not match this architecture: "
                                  f"{_first_line(exc)}",
                                  "was the architecture changed after training?") from None
        except Exception as exc:  # noqa: BLE001 - orbax/tensorstore raise many kinds
            raise CheckpointError(f"checkpoint {step} in {run_dir} cannot be read: "
                                  f"{_first_line(exc)}", "it may be corrupted or truncated") from None
        _check_shapes(abstract["state"], payload["state"])
        return payload["state"], {k: int(v) for k, v in payload["position"].items()}
    finally:
        mngr.close()


def _check_shapes(expected, got):
    flat_e = jax.tree_util.tree_flatten_with_path(expected)[0]
    flat_g = dict(jax.tree_util.tree_flatten_with_path(got)[0])
    for path, leaf in flat_e:
        have = flat_g.get(path)
        if have is not None and tuple(have.shape) != tuple(leaf.shape):
            name = jax.tree_util.keystr(path)
            raise CheckpointError(f"parameter {name} has shape {tuple(have.shape)} in the "
                                  f"checkpoint but {tuple(leaf.shape)} in the architecture",
                                  "was the architecture changed after training?")


def _first_line(exc) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
