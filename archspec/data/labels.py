"""Turning label columns into checked class ids, and the rule that tells classes from
regression targets when a file does not say (option `task`):

- text labels, booleans and whole numbers (integers, or floats such as 3.0), one per
  example, are class ids;
- anything else (a value with a fraction, or several values per example) is a
  regression target.

There is no cut-off on the number of distinct values: a whole-number target with 500
values is 500 classes unless `task: regression` is set.
"""
from __future__ import annotations

import numpy as np

from .errors import DataError

MAX_CLASS_ID = np.iinfo(np.int32).max - 1
GUESSED_HINT = ("whole-number targets are read as class ids unless option `task: regression` "
                "is set")


def looks_like_classes(y: np.ndarray) -> bool:
    """The rule above, for an array of labels (examples along axis 0)."""
    y = np.asarray(y)
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
        return False
    if y.dtype.kind in "USb":
        return True
    if np.issubdtype(y.dtype, np.integer):
        return True
    if not np.issubdtype(y.dtype, np.floating):
        return False
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isfinite(y) & (y == np.round(y))))


def check_class_ids(y: np.ndarray, num_classes: int | None, file: str,
                    key: str | None = None, guessed: bool = False) -> tuple[np.ndarray, int]:
    """Return y as int32 ids and the class count; negative or out-of-range ids are errors
    because they would silently index the wrong logit (or crash inside the loss).
    `key` names the array in a file holding several (records read "y[3]"); `guessed`
    says the task was not set, so the hint names option `task`."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"class labels must be one per example, found shape {y.shape}",
                        file=file, hint="use one integer class id per example")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        y = _integral(y, file, key)
    if len(y) and np.issubdtype(y.dtype, np.number) and np.max(y) > MAX_CLASS_ID:
        i = int(np.argmax(y > MAX_CLASS_ID))  # int32 ids would wrap round to small ones
        raise DataError(f"label {y[i]} is too large for a class id", file=file,
                        record=_record(key, i), hint=range_hint(guessed))
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        i = int(np.argmax(y < 0))
        raise DataError(f"label {y[i]} is negative", file=file, record=_record(key, i),
                        hint=range_hint(guessed))
    n = num_classes if num_classes is not None else (int(y.max()) + 1 if len(y) else 0)
    if len(y) and y.max() >= n:
        i = int(np.argmax(y >= n))
        raise DataError(f"label {y[i]} is out of range for {n} classes", file=file,
                        record=_record(key, i), hint=range_hint(guessed))
    return y.astype(np.int32), n


def range_hint(guessed: bool) -> str:
    text = "class ids run from 0 to num_classes - 1"
    return f"{text}; {GUESSED_HINT}" if guessed else text


def _record(key: str | None, i: int) -> str:
    return f"{key}[{i}]" if key else f"index {i}"


def _integral(y: np.ndarray, file: str, key: str | None) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.floating):
        raise DataError(f"class labels must be integers, found dtype {y.dtype}", file=file)
    bad = ~np.isfinite(y) | (y != np.round(y))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"class label {y[i]} is not a whole number", file=file,
                        record=_record(key, i), hint="set option `task: regression` for "
                        "real-valued targets")
    return y


def encode_strings(values) -> tuple[np.ndarray, list[str]]:
    """Map string labels to ids in sorted order, so ids do not depend on file order."""
    names = sorted(set(values))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int32), names
