"""How numbers, sizes and shapes read to a person: one formatter per idea, used by errors,
tables, diagrams and reports alike."""
from __future__ import annotations

import math

BYTES_PER_VALUE = 4  # float32 / int32: the size estimates before any dtype is chosen


def prod(xs) -> int:
    """The product of a shape's dimensions as an exact Python int (no overflow)."""
    return math.prod(int(x) for x in xs)


def fmt_count(n: int) -> str:
    """A count a person can read, however absurd: 1,234,567 or 7.69e+62."""
    return f"{n:,}" if n < 10**15 else sci(n)


def sci(n) -> str:
    """1.23e+45, also for integers too large for a float (about 10**308 and up)."""
    try:
        return f"{n:.2e}"
    except OverflowError:
        e = math.floor(math.log10(n))  # exact for integers of any size
        return f"{n / 10**e:.2f}e+{e}"


def fmt_bytes(n: float, digits: int = 1) -> str:
    """1.5 MiB; absurd sizes in scientific notation rather than a wall of digits."""
    if n >= 2**70:
        return f"{sci(n)} bytes"
    for suffix, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20),
                          ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.{digits}f} {suffix}"
    return f"{int(n)} B"


def human(n: float, unit: str = "", digits: int = 2, space: bool = True) -> str:
    """An SI-prefixed number: 1.23 GFLOP, 4.5k."""
    gap = " " if space else ""
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f}{gap}{suffix}{unit}"
    return f"{n:g}{gap}{unit}".rstrip()


def fmt_shape(shape) -> str:
    """A shape in prose and errors: (32, 32, 3)."""
    return "(" + ", ".join(str(s) for s in shape) + ")" if shape is not None else "?"


def fmt_dims(shape, empty: str = "?") -> str:
    """A shape in tables and diagrams, where space is short: 32×32×3."""
    return "×".join(str(s) for s in shape) if shape else empty
