"""Checks on the numbers themselves: every value finite and within float32's range.

Networks compute in float32 (or narrower), so a value float32 cannot hold (above about
3.4e38 in size) would turn into inf on conversion and then into NaN losses. Such values,
and NaN or inf written in the file, are refused where they are read, naming the record.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import DataError

F32_MAX = float(np.finfo(np.float32).max)
F32_RANGE = f"±{F32_MAX:.2g}"
_CHUNK = 1 << 16  # examples per pass, so the masks stay small for large image sets


def fits_float32(value: float) -> bool:
    return bool(np.isfinite(value)) and abs(value) <= F32_MAX


def describe(value: float) -> str:
    """'NaN', 'inf', '-inf', or '1e+300, beyond the float32 range (±3.4e+38)'."""
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:g}, beyond the float32 range ({F32_RANGE})"


def hint_for(value: float) -> str:
    if np.isfinite(value):
        return "rescale the values (the network computes in float32), or remove those examples"
    return "remove or fill in those examples"


def first_bad(a: np.ndarray) -> tuple[int, float] | None:
    """(example index, value) of the first example holding a value float32 cannot hold
    (NaN, inf, or too large), or None. Integer and bool arrays always fit."""
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating) or a.size == 0:
        return None
    flat = a.reshape(len(a), -1) if a.ndim else a.reshape(1, 1)
    wide = a.dtype.itemsize > 4
    for start in range(0, len(flat), _CHUNK):
        part = flat[start:start + _CHUNK]
        bad = ~np.isfinite(part)
        if wide:
            with np.errstate(invalid="ignore"):
                bad |= np.abs(part) > F32_MAX
        rows = bad.any(axis=1)
        if rows.any():
            i = int(np.argmax(rows))
            return start + i, float(part[i][bad[i]][0])
    return None


def check_values(a: np.ndarray, file: str, what: str,
                 record: Callable[[int], str | None] = lambda i: f"index {i}") -> None:
    """Refuse `a` (examples along axis 0) if any value is NaN, inf or beyond float32:
    "<what> holds NaN" at the record of the first such example."""
    found = first_bad(a)
    if found is not None:
        i, value = found
        raise DataError(f"{what} holds {describe(value)}", file=str(file), record=record(i),
                        hint=hint_for(value))
