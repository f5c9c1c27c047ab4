"""CSV tables: a header row, numeric feature columns, and a target column.

The task, unless set, follows the rule in labels.py: one target column holding any text,
or only whole numbers (however many distinct ones), is classification; otherwise
(a number with a fraction, or several target columns) regression. Whole-number labels
are class ids as written (so they must be >= 0); text labels get ids in sorted order.
Every number read must be finite and fit float32. Errors name the file line (the header
is line 1) and the column.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from ...errors import did_you_mean, parses_as_float
from ..dataset import Raw
from ..errors import DataError
from ..files import open_file, require_file
from ..labels import check_class_ids, encode_strings, range_hint
from ..options import SourceOptions
from ..values import F32_RANGE, fits_float32


class Options(SourceOptions):
    target: str | list[str] | None = Field(
        None, description="target column; a list of columns for multi-output regression; "
        "default: the last column")
    task: Literal["classification", "regression"] | None = Field(
        None, description="default: classification for text or whole-number targets, "
        "else regression")
    delimiter: str = Field(",", min_length=1, max_length=1)
    num_classes: int | None = Field(None, ge=1, description="default: largest label + 1")


def load(cfg, options: Options, input_shape, seed) -> Raw:
    path = require_file(cfg.path, "CSV file")
    header, rows = _read_rows(path, options.delimiter)
    targets = _target_columns(header, options.target, path)
    features = [i for i in range(len(header)) if i not in targets]
    if not features:
        raise DataError("no feature columns left besides the target", file=str(path))
    x = np.array([[_number(r, i, header, path) for i in features] for r in rows],
                 dtype=np.float32).reshape(len(rows), len(features))
    cells = [[r.cells[i] for i in targets] for r in rows]
    task = options.task or _guess_task(cells, len(targets))
    if task == "regression":
        y = np.array([[_number(r, i, header, path) for i in targets] for r in rows],
                     dtype=np.float32).reshape(len(rows), len(targets))
        return Raw(x, y, task, None, None, str(path))
    if len(targets) != 1:
        raise DataError("classification takes one target column", file=str(path),
                        option="target")
    y, n, names = _classes(rows, targets[0], header, options.num_classes, path,
                           guessed=options.task is None)
    return Raw(x, y, task, n, names, str(path))


class _Row:
    __slots__ = ("line", "cells")

    def __init__(self, line: int, cells: list[str]):
        self.line, self.cells = line, cells


def _read_rows(path: Path, delimiter: str) -> tuple[list[str], list[_Row]]:
    try:
        with io.TextIOWrapper(open_file(path, "CSV file"), newline="",
                              encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            rows = [_Row(reader.line_num, cells) for cells in reader if cells]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read as CSV: {exc}", file=str(path)) from None
    if not header:
        raise DataError("empty file: expected a header row of column names", file=str(path))
    header = [h.strip() for h in header]
    _names_once(header, path)
    for row in rows:
        if len(row.cells) != len(header):
            raise DataError(f"{len(row.cells)} cells, but the header has {len(header)} "
                            "columns", file=str(path), record=f"line {row.line}")
    return header, rows


def _names_once(header: list[str], path: Path) -> None:
    """Each column is named once: a target or a feature is looked up by its name."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        if name in seen:
            raise DataError(f"column '{name}' is named twice in the header (columns "
                            f"{seen[name]} and {i})", file=str(path), record="line 1",
                            hint="give every column its own name")
        seen[name] = i


def _target_columns(header: list[str], target, path: Path) -> list[int]:
    names = [target] if isinstance(target, str) else (target or [header[-1]])
    for name in names:
        if name not in header:
            raise DataError(f"no column named '{name}'", file=str(path), option="target",
                            hint=did_you_mean(name, header)
                            or f"columns: {', '.join(header)}")
    return [header.index(n) for n in names]


def _number(row: _Row, i: int, header: list[str], path: Path) -> float:
    cell = row.cells[i].strip()
    record = f"line {row.line}, column '{header[i]}'"
    try:
        value = float(cell)
    except ValueError:
        what = "an empty cell" if not cell else f"'{cell}' is not a number"
        raise DataError(what, file=str(path), record=record,
                        hint="fill in or remove the row; text columns other than the "
                        "target are not read") from None
    if not math.isfinite(value):
        raise DataError(f"'{cell}' (NaN or inf) is not allowed", file=str(path),
                        record=record, hint="fill in or remove the row")
    if not fits_float32(value):  # it would become inf once stored as float32
        raise DataError(f"'{cell}' is beyond the float32 range ({F32_RANGE})",
                        file=str(path), record=record, hint="rescale the column (the "
                        "network computes in float32), or remove the row")
    return value


def _guess_task(cells: list[list[str]], n_targets: int) -> str:
    if n_targets > 1:
        return "regression"
    values = [c[0].strip() for c in cells]
    if not all(_is_number(v) for v in values):
        return "classification"  # text labels cannot be regressed on
    return "classification" if all(_is_integer(v) for v in values) else "regression"


def _classes(rows, col: int, header, num_classes, path: Path, guessed: bool = False):
    values = [r.cells[col].strip() for r in rows]
    where = [f"line {r.line}, column '{header[col]}'" for r in rows]
    for v, record in zip(values, where):
        if not v or (parses_as_float(v) and not _is_number(v)):
            raise DataError(f"label {v or '(empty)'} is not allowed", file=str(path),
                            record=record, hint="fill in or remove the row")
    if not all(_is_number(v) for v in values):
        ids, names = encode_strings(values)
        return ids, len(names), names
    for v, record in zip(values, where):
        if not _is_integer(v):
            raise DataError(f"class label '{v}' is not a whole number", file=str(path),
                            record=record, hint="set option `task: regression` for "
                            "real-valued targets")
        problem = ("is negative" if float(v) < 0 else f"is out of range for {num_classes} "
                   "classes" if num_classes is not None and float(v) >= num_classes else None)
        if problem:
            raise DataError(f"label {v} {problem}", file=str(path), record=record,
                            hint=range_hint(guessed))
    ids, n = check_class_ids(np.array([int(float(v)) for v in values]), num_classes,
                             str(path), guessed=guessed)
    return ids, n, [str(i) for i in range(n)]




def _is_number(v: str) -> bool:
    try:
        return math.isfinite(float(v))
    except ValueError:
        return False


def _is_integer(v: str) -> bool:
    return _is_number(v) and float(v).is_integer()
