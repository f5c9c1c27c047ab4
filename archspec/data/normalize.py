"""Normalisation statistics (from the train split only) and their application.

Statistics are per channel: per entry of the last axis, i.e. per colour channel for
(H, W, C) images and per feature for tabular rows. They are stored as plain lists so
they can be saved with a checkpoint and applied again at prediction time.
"""
from __future__ import annotations

import json
import sys
from functools import partial

import numpy as np

from archspec import __version__

from .cache import cached_arrays, listing
from .lazy import STATS_PASS, is_lazy, mean_std_streaming, min_max_streaming

PIXELS = np.dtype(np.uint8)  # the dtype of a batch still in raw pixels (see to_network)
_CHUNK = 1 << 16  # rows per pass, so float64 sums never copy a whole image set


def is_tokens(x: np.ndarray) -> bool:
    """Integer ids (int32 after loading); uint8 is raw pixels (see to_network)."""
    return (np.issubdtype(x.dtype, np.integer) and x.dtype != PIXELS) or x.dtype == bool


def compute_stats(x: np.ndarray, kind: str) -> dict:
    """Statistics of `kind` ("standard", "minmax", "none") over all axes but the last."""
    if kind == "none" or is_tokens(x):
        return {"kind": "none"}  # token ids are indices: scaling them would break lookups
    if is_lazy(x):  # one streaming pass; the data need not fit in memory
        a, b = _streamed_stats(x, kind)
        if kind == "minmax":
            return {"kind": "minmax", "min": a.astype(float).tolist(),
                    "max": b.astype(float).tolist()}
        return {"kind": "standard", "mean": a.tolist(), "std": b.tolist()}
    rows = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(-1, 1)
    if kind == "minmax":
        return {"kind": "minmax", "min": rows.min(0).astype(float).tolist(),
                "max": rows.max(0).astype(float).tolist()}
    mean, std = _mean_std(rows)
    return {"kind": "standard", "mean": mean.tolist(), "std": std.tolist()}


def _streamed_stats(x, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) or (min, max) of a streamed split: one pass decoding every example,
    which on a large folder takes minutes, so the result is kept in the data cache keyed by
    the files' listing and every step that makes an example of a file (a file changed,
    added or removed, or another size or mode, is a new pass)."""
    def one_pass():
        sys.stderr.write(f"{STATS_PASS}: decoding {len(x):,} training examples "
                         "once (kept for later runs)...\n")
        a, b = (min_max_streaming if kind == "minmax" else mean_std_streaming)(x)
        return {"a": a, "b": b}

    how = _steps_key(x)
    names = x.records if x.index is None else [x.records[int(i)] for i in x.index]
    key = listing(names) if how is not None else None
    found = (cached_arrays("streamed-stats", {"kind": kind, "listing": key, "steps": how,
                                              "archspec": __version__}, one_pass)
             if key else one_pass())
    return found["a"], found["b"]


def _steps_key(x) -> list | None:
    """How an example is made from its file, as text; None when a step cannot be named
    exactly (a closure): such a split is never cached."""
    def name(f):
        if isinstance(f, partial):
            return [name(f.func), [repr(a) for a in f.args],
                    {k: repr(v) for k, v in sorted(f.keywords.items())}]
        return f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', repr(f))}"

    described = [name(f) for f in (x.decode, *x.steps)]
    text = json.dumps(described)
    return None if " at 0x" in text or "<locals>" in text or "<lambda>" in text else described


def _mean_std(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Two passes in float64: the one-pass E[x^2] - E[x]^2 loses precision on pixels.
    total = sum(c.sum(0, dtype=np.float64) for c in _chunks(rows))
    mean = total / max(len(rows), 1)
    sq = sum(((c - mean) ** 2).sum(0) for c in _chunks(rows))
    return mean, np.sqrt(sq / max(len(rows), 1))


def _chunks(rows: np.ndarray):
    for start in range(0, len(rows), _CHUNK):
        yield rows[start:start + _CHUNK]


def apply_normalization(x: np.ndarray, norm_stats: dict) -> np.ndarray:
    """Apply stats from `compute_stats` to x (any leading axes, channels last).

    A constant channel has (near) zero spread; its scale is taken as 1, as scikit-learn's
    scalers do, so it is only shifted: a pixel that is always 0 in train but not in test
    must not be divided by a tiny number.
    """
    x = np.asarray(x)
    if is_tokens(x):
        return x
    return _normalized(x.astype(np.float32, copy=False), norm_stats)


def to_network(x, norm_stats: dict):
    """A batch as the network takes it, on whatever array holds it (NumPy, or jax inside
    the jitted step). Streamed image folders reach it as raw uint8 pixels (data.loader:
    a quarter of float32's bytes to convert, copy and send; the normalisation fuses into
    the step's first ops on the device); they are normalised here with the train split's
    statistics. Every other batch was normalised when it was loaded and passes through."""
    if x.dtype != PIXELS:
        return x
    return _normalized(x.astype(np.float32), norm_stats)


def _normalized(x, norm_stats: dict):
    terms = normalization_terms(norm_stats)
    return x if terms is None else (x - terms[0]) / terms[1]


def normalization_terms(norm_stats: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(shift, scale) per channel, float32, such that normalised = (x - shift) / scale;
    None for `kind: none`. A constant channel's scale is 1 (see apply_normalization)."""
    kind = norm_stats.get("kind", "none")
    if kind == "none":
        return None
    if kind == "standard":
        shift, scale = norm_stats["mean"], norm_stats["std"]
    elif kind == "minmax":
        lo, hi = np.asarray(norm_stats["min"]), np.asarray(norm_stats["max"])
        shift, scale = lo, hi - lo
    else:
        raise ValueError(f"unknown normalisation kind {kind!r}")
    scale = np.asarray(scale, dtype=np.float32)
    return (np.asarray(shift, dtype=np.float32),
            np.where(scale > 1e-6, scale, np.float32(1.0)).astype(np.float32))
