"""Flag parsing the commands share: input shapes, choices, config overrides."""
from __future__ import annotations

from archspec.commands import BadParameter


def parse_shape(text: str | None):
    """--input-shape: "32,32,3" (or 32x32x3, 32×32×3) as a tuple of positive integers."""
    if text is None:
        return None
    parts = text.replace("×", ",").replace("x", ",").split(",")
    shape = tuple(int(p) for p in parts if p.strip().isdigit())
    if not shape or len(shape) != len(parts) or min(shape) < 1:
        raise BadParameter(f"expected positive integers like 224,224,3, got {text!r}",
                           param_hint="--input-shape")
    return shape


def choose(value: str, choices: tuple[str, ...], flag: str) -> str:
    """Refuse a value outside `choices`: "expected a, b or c"."""
    if value not in choices:
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        raise BadParameter(f"expected {listed}", param_hint=flag)
    return value


def at_least(value: int, low: int, flag: str, message: str | None = None) -> int:
    if value < low:
        raise BadParameter(message or f"must be >= {low}", param_hint=flag)
    return value


def overrides(sets: list[str], smoke: bool = False, **flags) -> list[str]:
    """The `--set key=value` list a command trains with: the --set flags, then one entry per
    flag given (`epochs=3`), then what --smoke implies."""
    out = list(sets)
    out += [f"{key}={value}" for key, value in flags.items() if value is not None]
    if smoke:
        out += ["data.limit=300"]
    return out
