"""Located errors: every problem a user can cause names file:line:col, the layer path,
what was expected, what was found, and a hint."""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

MAX_QUOTED = 80    # characters of one quoted value (a name, a string, a line of a file)
MAX_SHOWN = 400    # characters of any one field of an error (message, expected, found, hint)


@dataclass(frozen=True)
class Pos:
    """A 1-based line and column in a source file; line 0 for a place on the command line
    (`--set x=1`, `--data shapez`), which has no lines to count."""

    file: str
    line: int
    col: int

    @classmethod
    def command_line(cls, text: str) -> "Pos":
        """The place of a flag: `--set x=1`, `--data shapez`."""
        return cls(text, 0, 0)

    @property
    def on_command_line(self) -> bool:
        return self.line == 0

    def __str__(self) -> str:
        return self.file if self.on_command_line else f"{self.file}:{self.line}:{self.col}"


@dataclass
class SpecError:
    message: str
    pos: Pos | None = None
    path: str = ""
    expected: str | None = None
    found: str | None = None
    hint: str | None = None

    def __post_init__(self):
        # Every printer, the JSON and the JUnit writers take this form: capping here caps
        # them all, so no file or value reaches a log in more than a few words.
        self.message = clip_quoted(self.message)
        for name in ("expected", "found", "hint"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, clip_quoted(str(value)))

    def render_plain(self) -> str:
        where = f"{self.pos}: " if self.pos else ""
        at = f"{self.path}: " if self.path else ""
        lines = [f"{where}error: {at}{self.message}"]
        if self.expected is not None:
            lines.append(f"    expected: {self.expected}")
        if self.found is not None:
            lines.append(f"    found:    {self.found}")
        if self.hint:
            lines.append(f"    hint:     {self.hint}")
        return "\n".join(lines)


class ArchspecError(Exception):
    """The base of every problem a user can cause and fix.

    It carries the message, where the mistake is (`pos`: a line of a YAML file or a flag),
    a hint, and the exit code the command ends with (2: bad input; subclasses choose
    others). The CLI has one handler for all of them, so a new error type needs no wiring.
    """

    exit_code: int = 2

    def __init__(self, message: str, hint: str | None = None, *, pos: Pos | None = None):
        super().__init__(message)
        self.message, self.hint, self.pos = message, hint, pos

    def located(self) -> list[SpecError]:
        """The problem as located messages, the form every printer and JSON writer takes."""
        return [SpecError(self.message, self.pos, hint=self.hint)]


class UsageError(ArchspecError):
    """A command's argument or option that cannot be used as given (exit 2)."""

    exit_code = 2


class RunFailed(ArchspecError):
    """An error met after steps have trained (a streamed file truncated or replaced
    mid-epoch): the run is a failure (exit 1), not bad input; its cause is what is shown."""

    exit_code = 1

    def __init__(self, cause: ArchspecError):
        super().__init__(cause.message, cause.hint, pos=cause.pos)
        self.cause = cause
        # where a data error happened (the file, the record in it), as the cause says it
        self.file, self.record = getattr(cause, "file", None), getattr(cause, "record", None)

    def located(self) -> list[SpecError]:
        return self.cause.located()


class SpecErrors(ArchspecError):
    """All the errors found in one file, raised together."""

    def __init__(self, errors: list[SpecError]):
        super().__init__("\n".join(e.render_plain() for e in errors))
        self.errors = errors

    def located(self) -> list[SpecError]:
        return self.errors


class ErrorCollector:
    """Collects errors so one pass reports every problem at once."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []

    def add(self, message: str, pos: Pos | None = None, path: str = "", *, expected=None,
            found=None, hint=None) -> None:
        self.errors.append(SpecError(message, pos, path, expected, found, hint))

    def raise_if_any(self) -> None:
        if self.errors:
            raise SpecErrors(sorted(merge_instances(self.errors), key=_order))

    def __bool__(self) -> bool:
        return bool(self.errors)


def _order(e: SpecError):
    return (e.pos.line, e.pos.col) if e.pos else (10**9, 0)


def merge_instances(errors: list[SpecError]) -> list[SpecError]:
    """One error per mistake: a block used several times reports a mistake in its definition
    once, naming the first instance and how many others share it."""
    groups: dict[tuple, list[SpecError]] = {}
    for e in errors:
        key = (e.pos, e.message, e.expected, e.found, e.hint)
        groups.setdefault(key, []).append(e)
    out = []
    for same in groups.values():
        first = same[0]
        paths = list(dict.fromkeys(e.path for e in same if e.path))
        if len(paths) == 2:
            first.path = f"{paths[0]} (also {paths[1]})"
        elif len(paths) > 2:
            first.path = f"{paths[0]} (and {len(paths) - 1} more instances)"
        out.append(first)
    return out


def describe(value) -> str:
    """A value as a person reads it in an error: its text and, where it matters, its type."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        whole = not math.isfinite(value) or value.is_integer()
        return f"{value!r} (a float)" if whole else f"{value!r} (a fraction)"
    if isinstance(value, str):
        return f"the string {_clip(repr(value))}"
    if isinstance(value, (list, tuple)):
        return f"a list {_clip(repr(list(value)))}"
    if isinstance(value, dict):
        return f"a mapping {_clip(repr(dict(value)))}"
    return _clip(repr(value))


def _clip(text: str, n: int = MAX_QUOTED) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


_QUOTED = re.compile(r"'[^'\n]{%d,}'" % (MAX_QUOTED - 1))


def clip_quoted(text: str) -> str:
    """`text` with each '...'-quoted part cut to MAX_QUOTED characters and the whole to
    MAX_SHOWN: a 5,000-character name in a message is shown by its start."""
    text = _QUOTED.sub(lambda m: _clip(m.group(0)[:-1]) + "'", text)
    return _clip(text, MAX_SHOWN)


# What Keras and PyTorch call archspec's layer kinds and options: a user's habit gets the
# archspec word rather than a string-distance guess.
FOREIGN_NAMES = {
    "Conv1D": "conv", "Conv2D": "conv", "Conv3D": "conv", "Conv1d": "conv", "Conv2d": "conv",
    "Conv3d": "conv", "Dense": "dense", "BatchNormalization": "batchnorm",
    "BatchNorm1d": "batchnorm", "BatchNorm2d": "batchnorm", "LayerNormalization": "layernorm",
    "LayerNorm": "layernorm", "MaxPooling2D": "pool", "MaxPool2d": "pool",
    "AveragePooling2D": "pool", "AvgPool2d": "pool", "GlobalAveragePooling2D": "pool",
    "AdaptiveAvgPool2d": "pool", "Flatten": "flatten", "Dropout": "dropout",
    "Embedding": "embedding", "LSTM": "lstm", "GRU": "gru", "MultiHeadAttention": "attention",
    "ReLU": "relu", "Activation": "activation", "Add": "add", "Concatenate": "concat",
    "filters": "maps", "out_channels": "maps", "kernel_size": "kernel", "strides": "stride",
    "pool_size": "size", "use_bias": "bias", "dilation_rate": "dilation", "p": "rate",
    "out_features": "units",
}


def did_you_mean(word: str, choices) -> str | None:
    names = [str(c) for c in choices]
    ours = FOREIGN_NAMES.get(str(word))
    if ours in names:
        return f"archspec calls it '{ours}'"
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def parses_as_float(text: str) -> bool:
    """True when `float(text)` succeeds ("3e-4", "nan" and "inf" included)."""
    try:
        float(text)
        return True
    except ValueError:
        return False
