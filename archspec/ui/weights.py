"""The tables of `archspec weights`: a file's tensors, and what a conversion filled."""
from __future__ import annotations

import math

from rich import box

from archspec.fmt import fmt_bytes, fmt_shape
from archspec.ui.tables import Column, table


def tensors_table(tensors: dict, title: str = ""):
    """One row per tensor, in the file's order: name, shape, dtype, values."""
    rows = [[k, fmt_shape(v.shape), str(v.dtype), f"{math.prod(v.shape):,}"]
            for k, v in tensors.items()]
    return table([Column("tensor", "name"), Column("shape", "number", justify="left"),
                  Column("dtype", "name", drop=1), Column("values", "number")], rows,
                 title=title or None, box=box.SIMPLE_HEAD)


def totals_line(tensors: dict) -> str:
    floats = sum(math.prod(v.shape) for v in tensors.values() if v.dtype.kind == "f")
    nbytes = sum(v.nbytes for v in tensors.values())
    return f"{len(tensors)} tensors, {floats:,} floating-point values ({fmt_bytes(nbytes)})"
