"""Which swept keys a point's experiment reads: an option of another optimizer or schedule,
or `epochs` next to `steps`, has no effect, and sweeping it would train the same run many
times under different names."""
from __future__ import annotations

import json

from archspec.errors import did_you_mean


def fmt_value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else json.dumps(v) if not isinstance(v, str) else v


# (option, the setting that decides, the values of it that read the option, what it is)
READS = (
    ("optimizer.momentum", "optimizer.name", ("momentum", "nesterov"),
     "an option of the momentum and nesterov optimizers"),
    ("optimizer.schedule.boundaries|factor", "optimizer.schedule.name", ("step",),
     "an option of the step schedule"),                 # `|`: either option
    ("optimizer.schedule.final_lr", "optimizer.schedule.name", ("cosine", "linear"),
     "an option of the cosine and linear schedules"),
    ("optimizer.schedule.pct_start|div_factor|final_div_factor", "optimizer.schedule.name",
     ("one_cycle",), "an option of the one_cycle schedule"),
    ("loss.*.label_smoothing", "loss.*.kind", ("categorical_crossentropy",),
     "an option of categorical_crossentropy"),      # `*`: any head, the same in both
    ("epochs", "steps", (None,), "read only when `steps` is not set"),
    ("health.restart_lr_factor", "health.restarts", lambda n: n > 0, "read after a restart"),
)
_MISSING = object()


def unread(sweep, key: str, loaded):
    """The error for a swept key that this point's experiment does not read, else None."""
    from archspec.errors import SpecError

    pos = sweep.key_positions.get(key)
    parts = key.split(".")
    if parts[0] == "output":
        return SpecError("a sweep does not read the experiment's `output`", pos, key,
                         expected="a key the training reads", found=repr(key),
                         hint="set `output:` in the sweep file, or pass --output")
    heads = list(loaded.graph.heads)
    if parts[0] == "loss" and len(parts) > 1 and parts[1] not in heads:
        return SpecError(f"loss names unknown head '{parts[1]}'", pos, key,
                         expected="one of: " + ", ".join(heads), found=repr(parts[1]),
                         hint=did_you_mean(parts[1], heads))
    for option, setting, reads, says in READS:
        pattern = option.split(".")
        if len(pattern) != len(parts) or any(o != "*" and k not in o.split("|")
                                             for o, k in zip(pattern, parts)):
            continue
        setting = setting.replace("*", next((k for o, k in zip(pattern, parts) if o == "*"), ""))
        value = _lookup(loaded.config, setting.split("."))
        if value is _MISSING or (reads(value) if callable(reads) else value in reads):
            continue
        shown = "not set" if value is None else fmt_value(value)
        listed = not callable(reads) and reads[0] is not None
        return SpecError(f"'{parts[-1]}' has no effect in this experiment", pos, key,
                         expected=f"{setting}: {' or '.join(reads)}" if listed else says,
                         found=f"{setting}: {shown}",
                         hint=f"{parts[-1]} is {says}; this experiment's {setting} is {shown}: "
                              + (f"add `{setting}: {reads[0]}` to the sweep" if listed else
                                 f"change `{setting}`") + f", or remove `{key}`")
    return None


def _lookup(node, parts: list[str]):
    for part in parts:  # the value at a key path of the resolved config, else _MISSING
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node
