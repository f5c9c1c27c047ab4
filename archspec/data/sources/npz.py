"""NumPy .npz archives: arrays `x` and `y`, or pre-split `x_train`/`y_train`
(with `x_test`/`y_test` used as the test split when present).

The task, unless set, follows the rule in labels.py: string, bool or whole-number y
(integer-valued floats included), one value per example, is class ids; other y is
regression targets. Every float value must be finite and fit float32.

x of shape (N, H, W) or (N, H, W, C) is images, (N, F) rows of features. Integer x other
than uint8 is token ids (never normalised or resized); uint8 is read as pixels. Object
arrays are refused: reading them would unpickle arbitrary code.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from ...errors import did_you_mean
from ..dataset import Raw
from ..errors import DataError
from ..files import open_file, require_file
from ..labels import check_class_ids, encode_strings, looks_like_classes
from ..options import SourceOptions
from ..values import check_values


class Options(SourceOptions):
    x_key: str | None = Field(None, description="default: x, else x_train")
    y_key: str | None = Field(None, description="default: y, else y_train")
    task: Literal["classification", "regression"] | None = Field(
        None, description="default: classification for string or whole-number y (floats "
        "such as 3.0 included), one per example; else regression")
    tokens: bool | None = Field(None, description="x is token ids; default: integer x "
                                "other than uint8")
    num_classes: int | None = Field(None, ge=1, description="default: largest label + 1")


def load(cfg, options: Options, input_shape, seed) -> Raw:
    path = require_file(cfg.path, "npz file")
    arrays = _read(path)
    x_key, y_key = _keys(arrays, options)
    splits = {"train": _pair(arrays, x_key, y_key, path)}
    if x_key == "x_train" and {"x_test", "y_test"} <= arrays.keys():
        splits["test"] = _pair(arrays, "x_test", "y_test", path)
    x = splits["train"][0]
    tokens = options.tokens if options.tokens is not None else _looks_like_tokens(x)
    y = splits["train"][1]
    guessed = options.task is None
    task = options.task or ("classification" if looks_like_classes(y) else "regression")
    xs = {k: _inputs(v[0], tokens, path) for k, v in splits.items()}
    keys = {"train": y_key, "test": "y_test"}
    if task == "regression":
        ys = {k: _targets(v[1], keys[k], path) for k, v in splits.items()}
        n, names = None, None
    else:
        ys, n, names = _classes({k: v[1] for k, v in splits.items()}, keys,
                                options.num_classes, path, guessed)
    test = (xs["test"], ys["test"]) if "test" in splits else None
    image = xs["train"].ndim == 4 and not tokens
    return Raw(xs["train"], ys["train"], task, n, names, str(path), image=image,
               tokens=tokens, test=test)


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        with open_file(path, "npz file") as f, np.load(f, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:  # raised for object arrays when pickles are not allowed
        raise DataError(f"holds Python objects, which are not read: {exc}", file=str(path),
                        hint="save plain numeric or string arrays") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"not a readable .npz file: {exc}", file=str(path)) from None


def _keys(arrays: dict, options: Options) -> tuple[str, str]:
    if options.x_key or options.y_key:
        return options.x_key or "x", options.y_key or "y"
    if "x" not in arrays and "x_train" in arrays:
        return "x_train", "y_train"
    return "x", "y"


def _pair(arrays: dict, x_key: str, y_key: str, path: Path):
    x, y = _get(arrays, x_key, path), _get(arrays, y_key, path)
    if len(x) != len(y):
        raise DataError(f"'{x_key}' has {len(x)} examples but '{y_key}' has {len(y)}",
                        file=str(path))
    if np.issubdtype(x.dtype, np.floating):
        _finite(x, x_key, path)
    elif not (np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
        raise DataError(f"'{x_key}' must be numeric, found dtype {x.dtype}", file=str(path))
    return x, y


def _get(arrays: dict, key: str, path: Path) -> np.ndarray:
    if key not in arrays:
        hint = did_you_mean(key, arrays) or f"arrays in the file: {', '.join(arrays)}"
        raise DataError(f"no array named '{key}'", file=str(path), hint=hint)
    a = arrays[key]
    if a.ndim == 0:
        raise DataError(f"'{key}' is a single value, not one entry per example",
                        file=str(path))
    return a


def _finite(a: np.ndarray, key: str, path: Path) -> None:
    """NaN, inf and values beyond float32 (they would become inf) are refused."""
    check_values(a, str(path), f"'{key}'", record=lambda i: f"{key}[{i}]")


def _looks_like_tokens(x: np.ndarray) -> bool:
    return np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8


def _inputs(x: np.ndarray, tokens: bool, path: Path) -> np.ndarray:
    """Token ids as int32; other x keeps its dtype (the loader makes it float32 once
    the examples to keep are chosen)."""
    if x.ndim == 1:
        x = x[:, None]  # one feature per example
    elif x.ndim == 3 and not tokens:
        x = x[..., None]  # grey images get their channel axis
    if tokens:
        if not (np.issubdtype(x.dtype, np.integer) or np.array_equal(x, np.round(x))):
            raise DataError("`tokens: true` needs whole-number x", file=str(path),
                            option="tokens")
        return x.astype(np.int32)
    return x


def _targets(y: np.ndarray, key: str, path: Path) -> np.ndarray:
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise DataError(f"regression targets '{key}' must be numeric, found {y.dtype}",
                        file=str(path))
    _finite(y, key, path)  # before the cast: 1e300 would become inf
    return y.astype(np.float32).reshape(len(y), -1)


def _classes(ys: dict, keys: dict, num_classes: int | None, path: Path, guessed: bool):
    if ys["train"].dtype.kind in "US":  # string labels: ids in sorted order
        both = np.concatenate(list(ys.values()))
        ids, names = encode_strings([_text(v) for v in both.tolist()])
        parts = np.split(ids, np.cumsum([len(y) for y in ys.values()])[:-1])
        return dict(zip(ys, parts)), len(names), names
    out, n = {}, 0
    for k, y in ys.items():
        out[k], n_k = check_class_ids(y, num_classes, str(path), key=keys[k],
                                      guessed=guessed)
        n = max(n, n_k)
    return out, n, [str(i) for i in range(n)]


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
