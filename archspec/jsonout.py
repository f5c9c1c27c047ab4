"""JSON for scripts: strict JSON, where a number that is not finite is null.
(Python's json writes bare NaN and Infinity, which no JSON parser outside Python accepts.)"""
from __future__ import annotations

import json
import math
from fractions import Fraction


def finite(obj):
    """A copy of `obj` with every non-finite float replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Fraction):  # a receptive-field jump below one input step
        return float(obj)
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):  # NumPy scalars and arrays
        return finite(obj.tolist())
    return obj


def dumps(obj, **kw) -> str:
    return json.dumps(finite(obj), allow_nan=False, **kw)
