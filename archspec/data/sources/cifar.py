"""CIFAR-10 and CIFAR-100 in their "python version" pickle batches.

Why a pickle is read at all: this is the format the CIFAR authors publish, and the
files are ones the user downloaded and points us at, not anything fetched for them.
Pickle can still run code while loading, so the unpickler below only resolves the few
NumPy names an array needs; any other global (a function, a class) is refused before
it is called, and the result must be a dict of arrays, lists, bytes and ints, as a real
batch (and batches.meta) is.

Nor may a small pickle grow while it is read: the few callables it may use are guarded
(an empty array to fill in, latin1 text, a view of bytes already in the file), and
lists must be flat lists of plain values before NumPy turns them into arrays, since
lists that share their items (a few bytes each) would expand exponentially. So memory
stays about the size of the file.
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Literal

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

from ..dataset import Raw
from ..errors import DataError
from ..files import open_file, require_file, require_folder
from ..labels import check_class_ids
from ..options import SourceOptions

ROW = 3 * 32 * 32  # one image: 1024 red, then 1024 green, then 1024 blue bytes


class Options(SourceOptions):
    label_mode: Literal["fine", "coarse"] = "fine"  # CIFAR-100: 100 fine or 20 coarse


def load(cfg, options: Options, input_shape, seed) -> Raw:
    folder = require_folder(cfg.path, "CIFAR folder")
    batches = sorted(folder.glob("data_batch_*"), key=_batch_number)
    if batches:
        if options.label_mode != "fine":
            raise DataError("`label_mode` applies to CIFAR-100 only; this folder holds "
                            "CIFAR-10 batches", file=str(folder), option="label_mode")
        return _cifar10(folder, batches)
    if (folder / "train").is_file():
        return _cifar100(folder, options.label_mode)
    raise DataError("no CIFAR batches here", file=str(folder), hint=(
        "expected data_batch_1..5 and test_batch (CIFAR-10) or train and test "
        "(CIFAR-100), as in the extracted cifar-10-batches-py / cifar-100-python folder"))


def _batch_number(p: Path):
    tail = p.name.rsplit("_", 1)[-1]
    return (0, int(tail)) if tail.isdigit() else (1, tail)


def _cifar10(folder: Path, batches: list[Path]) -> Raw:
    names = _names(folder / "batches.meta", "label_names", 10)
    parts = [_read_batch(p, "labels", 10) for p in batches]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    test = _read_batch(_need(folder / "test_batch"), "labels", 10)
    return Raw(x, y, "classification", 10, names, str(folder), image=True, test=test)


def _cifar100(folder: Path, mode: str) -> Raw:
    n = 100 if mode == "fine" else 20
    names = _names(folder / "meta", f"{mode}_label_names", n)
    train = _read_batch(folder / "train", f"{mode}_labels", n)
    test = _read_batch(_need(folder / "test"), f"{mode}_labels", n)
    return Raw(*train, "classification", n, names, str(folder), image=True, test=test)


def _need(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path.name} is missing from the CIFAR folder", file=str(path))
    return require_file(path, "CIFAR batch")


def _read_batch(path: Path, label_key: str, n_classes: int):
    d = load_pickle(require_file(path, "CIFAR batch"))
    data, labels = _get(d, "data", path), _get(d, label_key, path)
    if not isinstance(data, np.ndarray):  # a list would be expanded by NumPy
        raise DataError(f"not a CIFAR batch: 'data' must be a uint8 array, found a "
                        f"{type(data).__name__}", file=str(path))
    if not isinstance(labels, (list, np.ndarray)) or isinstance(labels, list) and any(
            isinstance(v, (list, tuple, dict, np.ndarray)) for v in labels):
        raise DataError(f"not a CIFAR batch: '{label_key}' must be a flat list of class ids",
                        file=str(path))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW:
        raise DataError(f"'data' must be uint8 rows of {ROW} bytes (3x32x32), found "
                        f"{data.dtype} {data.shape}", file=str(path))
    if len(labels) != len(data):
        raise DataError(f"{len(labels)} labels for {len(data)} images", file=str(path))
    y, _ = check_class_ids(np.asarray(labels), n_classes, str(path))
    # Rows are channel-first (C, H, W); models here take channels last.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y


def _get(d: dict, key: str, path: Path):
    if key not in d:
        raise DataError(f"no '{key}' entry", file=str(path),
                        hint=f"entries found: {', '.join(sorted(d))}")
    return d[key]


def _names(path: Path, key: str, n: int) -> list[str]:
    names = load_pickle(path).get(key) if path.is_file() else None
    if not isinstance(names, list) or len(names) != n or not all(
            isinstance(v, (bytes, str)) for v in names):
        return [str(i) for i in range(n)]  # the meta file is optional
    return [v.decode() if isinstance(v, bytes) else str(v) for v in names]


class _Refused(Exception):
    """A pickle asked for something a CIFAR batch never holds."""


def _guarded_reconstruct(subtype, shape, dtype):
    # NumPy pickles an array as an empty (0,) array, then fills it from bytes in the file.
    if subtype is not _NDARRAY:
        raise _Refused("an array of an unexpected type")
    if not isinstance(shape, tuple) or math.prod(shape) > 1:
        raise _Refused(f"the pickle declares an array of {shape} before its data")
    return _reconstruct(np.ndarray, shape, dtype)


def _guarded_encode(text, encoding="utf-8"):
    # NumPy stores array bytes as latin1 text; other codecs (hex, ...) could grow them.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _Refused(f"only latin1 text is decoded, not {encoding!r}")
    return text.encode("latin1")


def _guarded_frombuffer(buf, dtype, shape, order):
    return _frombuffer(buf, dtype, shape, order)  # a view of bytes already read


class _NdarrayName:
    """Stands for numpy.ndarray in a pickle: it may be passed on, never called."""

    def __call__(self, *args, **kwargs):
        raise _Refused("refused to call numpy.ndarray")


_NDARRAY = _NdarrayName()
_ALLOWED = {
    ("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _guarded_encode,
    ("numpy.core.multiarray", "_reconstruct"): _guarded_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _guarded_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _guarded_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _guarded_frombuffer,
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return _ALLOWED[module, name]


def load_pickle(path: Path) -> dict:
    """One CIFAR pickle as a dict with str keys, refusing anything but plain data."""
    try:
        with open_file(path, "CIFAR batch") as f:
            obj = _ArraysOnly(f, encoding="bytes").load()
    except DataError:
        raise
    except Exception as exc:  # a damaged pickle fails in many ways; all mean "not a batch"
        raise DataError(f"not a CIFAR batch: {exc}", file=str(path), hint=(
            "only pickles of plain arrays, lists and bytes are read")) from None
    if not isinstance(obj, dict):
        raise DataError(f"not a CIFAR batch: holds a {type(obj).__name__}, not a dict",
                        file=str(path))
    out = {}
    for key, value in obj.items():
        # batches.meta also holds two counts (num_cases_per_batch, num_vis) as plain ints
        if not isinstance(value, (np.ndarray, list, bytes, str, int)):
            raise DataError(f"not a CIFAR batch: entry {key!r} is a "
                            f"{type(value).__name__}", file=str(path))
        out[key.decode() if isinstance(key, bytes) else str(key)] = value
    return out
