"""Measuring a trained state on a split, and the one rule for which weights a run's test
score belongs to: the best checkpoint (highest validation score, a tie to the lower val
loss) when the run validated, else the latest. `train` and `eval` both follow it and both
say which they used."""
from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from archspec.data import batches, prefetch
from archspec.data.lazy import is_lazy
from archspec.engine import losses
from archspec.engine.step import fetch, make_eval_step, pad_batch, put_batch, shardings


def evaluate(setup, state, split, eval_step=None, batch_size=None,
             progress: Callable[[int], None] | None = None, outputs: bool = True,
             kept: "KeptSplit | None" = None):
    """Loss and accuracy over a whole split (every example exactly once), the mean IoU of
    per-pixel heads (`mean_iou/<head>`), and the heads' outputs (`outputs=False`: none, as
    validation during training needs). `progress(examples_done)` is called after each
    batch. The metrics are fetched once, at the end, so batches are dispatched without
    waiting for each other. `kept` keeps the split's batches on the devices for the next
    call (validation after every epoch)."""
    eval_step = eval_step or make_eval_step(setup.model, setup.heads, setup.mesh,
                                            setup.dataset.norm_stats)
    bs = batch_size or setup.exp.eval_batch_size or setup.exp.batch_size
    data_sh, _ = shardings(setup.mesh)
    per_batch, n, outs, ious = [], 0, [], {}
    pixel = _per_pixel_heads(setup)
    fed = kept.batches(split, bs, data_sh) if kept is not None else _fed(split, bs, data_sh)
    for placed, y, real in fed:
        metrics, out = eval_step(state, *placed)
        per_batch.append((metrics, real))
        n += real
        if outputs:
            outs.append({k: np.asarray(v)[:real] for k, v in fetch(out).items()})
        if pixel:
            got = outs[-1] if outputs else fetch({h.head: out[h.head] for h in pixel})
            _count_ious(ious, pixel, got, np.asarray(y)[:real])
        if progress is not None:
            progress(n)
    sums = {}
    for metrics, real in jax.device_get(per_batch):
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + float(v) * real
    result = {k: v / max(n, 1) for k, v in sums.items()}
    result.update({f"mean_iou/{h}": losses.mean_iou(*c) for h, c in ious.items()})
    result = in_head_order(result, setup.heads)
    result["examples"] = n
    return result, {k: np.concatenate([o[k] for o in outs]) for k in outs[0]} if outs else {}


def _fed(split, bs: int, data_sh):
    """(batch on the device, labels, real examples), read, padded and copied on a prefetch
    thread for a streamed split: decoding overlaps the device's work, as in training. An
    in-memory split is sliced in place (a thread per validation costs more than it saves)."""
    padded = ((pad_batch(x, y, bs), y, len(x))
              for x, y in batches(split, bs, shuffle=False, seed=0, epoch=0))
    return prefetch(padded, 2 if is_lazy(split.x) else 0,
                    put=lambda b: (put_batch(b[0], data_sh), b[1], b[2]))


class KeptSplit:
    """A split measured again and again (validation after each epoch): its padded batches
    are copied to the devices once and reused, when the split is in memory and at most
    LIMIT bytes; a streamed or larger split is read and copied at each measurement."""

    LIMIT = 256 << 20

    def __init__(self):
        self.placed = None

    def batches(self, split, bs: int, data_sh):
        if self.placed is None:
            fed = _fed(split, bs, data_sh)
            if not stays_on_device(split):
                return fed
            self.placed = list(fed)
        return self.placed


def stays_on_device(split) -> bool:
    """Whether a split is kept on the devices rather than read and copied again each time
    (the val split, engine/resident.py's train split): in memory, and its examples and labels
    at most KeptSplit.LIMIT bytes."""
    return not is_lazy(split.x) and split.x.nbytes + split.y.nbytes <= KeptSplit.LIMIT


def _per_pixel_heads(setup) -> list:
    """The evaluated classification heads with a class map per position (segmentation)."""
    shapes = {name: head.shape for name, head in setup.graph.heads.items()}
    return [h for h in setup.heads if not h.train_only and len(shapes.get(h.head) or ()) > 1
            and h.kind in ("categorical_crossentropy", "binary_crossentropy")]


def _count_ious(ious: dict, heads, out: dict, y: np.ndarray) -> None:
    """Add one batch's per-class intersections and unions to `ious` (head -> counts) for
    the per-pixel heads whose labels are masks (logits (N, H, W, C), masks (N, H, W)): the
    mean IoU of a split is taken from its summed counts, not averaged over batches."""
    for h in heads:
        logits = np.asarray(out[h.head])[:len(y)]
        if y.ndim != logits.ndim - 1:
            continue
        classes = 2 if h.kind == "binary_crossentropy" else logits.shape[-1]
        inter, union = losses.iou_counts(losses.predicted_classes(h.kind, logits), y, classes)
        if h.head in ious:
            inter, union = inter + ious[h.head][0], union + ious[h.head][1]
        ious[h.head] = (inter, union)


def in_head_order(metrics: dict, heads) -> dict:
    """`metrics` with the per-head entries in the architecture's head order (a jitted step
    returns them sorted by name). The first head's accuracy is the run's main score (best
    checkpoint, tables, `expect: test.accuracy`), so it must come first: GoogLeNet's `aux`
    head sorts before its main one."""
    rank = {h.head: i for i, h in enumerate(heads)}

    def key(name: str):
        head = name.split("/", 1)[1] if "/" in name else None
        return (head is not None, rank.get(head, len(rank)), name.split("/")[0])

    return {k: metrics[k] for k in sorted(metrics, key=key)}
