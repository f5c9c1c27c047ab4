"""load_dataset: source -> split -> fit to the input shape -> normalisation.

Sources check their own labels, since only they know which file each label came from."""
from __future__ import annotations

from functools import partial

import numpy as np

from .config import DataConfig
from .dataset import Dataset, Raw, Split
from .errors import DataError
from .lazy import MEMORY_BUDGET, decoded_bytes, is_lazy
from .normalize import PIXELS, apply_normalization, compute_stats
from .registry import SOURCES
from .shaping import fit_to_shape
from .splits import split_indices


def load_dataset(cfg: DataConfig, input_shape: tuple[int, ...] | None = None,
                 seed: int = 0) -> Dataset:
    """Load, check, split and normalise the data `cfg` names.

    `input_shape` is the architecture's input shape without the batch axis; examples
    are reshaped or (images, with `cfg.resize`) resized to it. None keeps the data's own
    shape. The same (cfg, input_shape, seed) always gives the same splits.
    """
    source = SOURCES[cfg.name]
    options = cfg.source_options()
    if not source.takes_path:
        check_generated(getattr(options, "n", None), cfg.limit, input_shape)
    raw = source.load(cfg, options, input_shape, seed)
    train, val, test = _split(raw, cfg, seed)
    train, val, test = (_fit(s, raw, cfg, input_shape) for s in (train, val, test))
    stats = compute_stats(train.x, cfg.normalize)
    train, val, test = (Split(_normalized(s.x, stats), s.y) for s in (train, val, test))
    return Dataset(name=cfg.name, task=raw.task, train=train, val=val, test=test,
                   num_classes=raw.num_classes, class_names=raw.class_names,
                   input_shape=tuple(train.x.shape[1:]), norm_stats=stats,
                   vocabulary=raw.vocabulary)


# A generated set (shapes, function, text, ...) is drawn whole, in memory, before step 1:
# a demo or a test, whose experiments draw 1,000 to 2,000 examples. A million examples of
# the cheapest set draw in about a second (shapes: 0.4 ms each, minutes); the bytes are
# bounded like an image folder kept in memory (data.lazy.MEMORY_BUDGET).
MAX_GENERATED = 1_000_000


def check_generated(n: int | None, limit: int | None, input_shape) -> None:
    """Refuse a generated set too large to draw, before any example is drawn."""
    if n is None:
        return
    n = min(n, limit or n)
    size = decoded_bytes(n, input_shape or (1,))
    if n > MAX_GENERATED:
        raise DataError(f"{n:,} examples is more than the {MAX_GENERATED:,} a generated "
                        "data set draws", option="n", hint=f"at most {MAX_GENERATED:,} "
                        "(or set data.limit); for more, save the data to a file")
    if size > MEMORY_BUDGET:
        raise DataError(f"{n:,} examples of shape {tuple(input_shape)} take "
                        f"{size / 2**30:.2f} GiB as float32, more than the "
                        f"{MEMORY_BUDGET / 2**30:g} GiB a generated data set may",
                        option="n", hint=f"draw at most {MEMORY_BUDGET // (size // n):,} "
                        f"examples, or a smaller input shape (at most "
                        f"{MEMORY_BUDGET / 2**30:g} GiB)")


def _split(raw: Raw, cfg: DataConfig, seed: int) -> tuple[Split, Split, Split]:
    train, val, test = split_indices(raw, cfg.val_fraction, cfg.test_fraction, cfg.limit,
                                     seed)
    test_x, test_y = raw.test if raw.test is not None else (raw.x, raw.y)
    return (Split(_take(raw.x, train), raw.y[train]), Split(_take(raw.x, val), raw.y[val]),
            Split(_take(test_x, test), test_y[test]))


def _take(x, idx):
    return x.take(idx) if is_lazy(x) else x[idx]


def _fit(split: Split, raw: Raw, cfg: DataConfig, input_shape) -> Split:
    dtype = np.int32 if raw.tokens else np.float32
    fit = partial(fit_to_shape, target=input_shape, image=raw.image, resize=cfg.resize,
                  source=raw.source)
    if is_lazy(split.x):
        # Check the fit now on one stand-in example; replay it on every decoded batch.
        dtype = _streamed_dtype(split.x, fit, dtype)
        probe = fit(np.zeros((1, *split.x.shape[1:]), dtype))
        x = split.x.then(partial(np.asarray, dtype=dtype), dtype=dtype)
        return Split(x.then(fit, probe.shape[1:]), split.y)
    return Split(fit(split.x.astype(dtype, copy=False)), split.y)


def _streamed_dtype(x, fit, dtype):
    """8-bit pixels that the fit keeps 8-bit (no resizing) stay so until the device, where
    normalize.to_network finishes them; anything else becomes `dtype` on the host."""
    if x.dtype == PIXELS and fit(np.zeros((1, *x.shape[1:]), PIXELS)).dtype == PIXELS:
        return PIXELS
    return dtype


def _normalized(x, stats):
    if is_lazy(x):
        if x.dtype == PIXELS:  # raw pixels: normalised where the network takes them
            return x
        return x.then(partial(apply_normalization, norm_stats=stats), dtype=np.float32)
    return apply_normalization(x, stats)
