"""Turn pydantic validation errors into located SpecErrors (file:line:col, expected, found).

One mistake gives one error: pydantic reports a failure per member of a union
(`kernel: int | list[int]`) and both halves of a typo (`map` unknown, `maps` missing); both
are folded into a single message that names the field, says what was expected and what was
found, and suggests a fix where one is likely.
"""
from __future__ import annotations

import math
import re
import types
import typing

from pydantic import BaseModel, ValidationError

from archspec.errors import ErrorCollector, Pos, describe, did_you_mean, parses_as_float
from archspec.spec.yaml_loader import YList, YMap


def position(node, loc, fallback: Pos | None, at_key: bool = False) -> Pos | None:
    """Walk a loaded YAML tree along a pydantic `loc` and return the deepest known position."""
    pos = getattr(node, "pos", None) or fallback
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, YMap) and part in node:
            pos = (node.key_pos if (last and at_key) else node.val_pos)[part]
            node = node[part]
        elif isinstance(node, YList) and isinstance(part, int) and part < len(node):
            pos, node = node.item_pos[part], node[part]
        else:
            break
    return pos


def field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def validate(model: type[BaseModel], data, node, errors: ErrorCollector, path: str,
             fallback: Pos | None = None, what: str = ""):
    """Validate `data` (plain values) against `model`; `node` is the YAML it came from.
    Returns the model instance, or None after adding one located error per mistake."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for loc, group in _groups(exc.errors()):
            _report(model, loc, group, data, node, errors, path, fallback, what)
        return None


def validate_lenient(model: type[BaseModel], data: YMap, errors: ErrorCollector, path: str,
                     what: str, optional: tuple = (), per_entry: tuple = (),
                     placeholders: dict | None = None):
    """Validate a mapping and report its errors; then, so that later stages can still report
    theirs, drop what failed and validate again quietly.

    `optional` names keys that may be dropped whole (they have defaults); `per_entry` names
    mappings whose failing entries may be dropped one by one (heads); `placeholders` gives a
    stand-in value for required keys (`name`). Returns `(instance, cleaned)`, or `(None, data)`
    when what failed cannot be dropped without causing errors of its own."""
    try:
        return model.model_validate(data), data
    except ValidationError as exc:
        raw = exc.errors()
        for loc, group in _groups(raw):
            _report(model, loc, group, data, data, errors, path, data.pos, what)
    placeholders = placeholders or {}
    drop_keys, drop_entries = set(), {}
    for err in raw:
        loc = err["loc"]
        top = loc[0] if loc else None
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            drop_keys.add(top)
        elif top in per_entry and len(loc) >= 2:
            drop_entries.setdefault(top, set()).add(loc[1])
        elif top in optional or top in placeholders:
            drop_keys.add(top)
        else:
            return None, data
    cleaned = _copy(data, lambda k: k not in drop_keys)
    for key, bad in drop_entries.items():
        if isinstance(cleaned.get(key), YMap):
            cleaned[key] = _copy(cleaned[key], lambda k, bad=bad: k not in bad)
    for key, value in placeholders.items():
        if key in drop_keys:
            cleaned[key] = value
            cleaned.key_pos.setdefault(key, data.pos)
            cleaned.val_pos.setdefault(key, data.pos)
    try:
        return model.model_validate(cleaned), cleaned
    except ValidationError:
        return None, data


def _copy(m: YMap, keep) -> YMap:
    kept = [(k, v) for k, v in m.items() if keep(k)]
    return YMap(kept, m.pos, {k: m.key_pos[k] for k, _ in kept},
                {k: m.val_pos[k] for k, _ in kept})


# --- grouping -----------------------------------------------------------------------------

_TYPE_TAGS = {"int", "str", "float", "bool", "list", "dict", "none", "tuple", "literal"}


def _is_union_tag(part) -> bool:
    """pydantic names union members in `loc` (`int`, `list[int]`, `literal['a']`)."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or "(" in part)


def _groups(raw: list[dict]) -> list[tuple[tuple, list[dict]]]:
    """One group per mistake: the errors of one union field, keyed by the field's location.
    A typo (`map` unknown while `maps` is missing) folds the missing error into the unknown one."""
    groups: dict[tuple, list[dict]] = {}
    for err in raw:
        key, member = [], False
        for part in err["loc"]:
            if _is_union_tag(part):
                member = True
                break
            key.append(part)
        err = {**err, "member": member,
               "sub": tuple(p for p in err["loc"] if not _is_union_tag(p))[len(key):]}
        groups.setdefault((tuple(key), err["type"] == "extra_forbidden"), []).append(err)
    unknown = {loc: loc[-1] for (loc, extra) in groups if extra and loc}
    out = []
    for (loc, extra), group in groups.items():
        if group[0]["type"] == "missing" and loc and any(
                u[:-1] == loc[:-1] and did_you_mean(str(name), [loc[-1]])
                for u, name in unknown.items()):
            continue  # reported as "unknown option 'map' ... did you mean 'maps'?"
        out.append((loc, group))
    return out


# --- reporting ----------------------------------------------------------------------------

_WORDS = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list", "tuple_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "none_required": "nothing",
}
_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal",
          "too_short", "too_long"}


def _report(model, loc, group, data, node, errors, path, fallback, what):
    first = group[0]
    where, field = _split_loc(loc, path)
    if first["type"] == "extra_forbidden":
        sub = _model_at(model, loc[:-1]) or model
        names = field_names(sub)
        if _is_layer_options(sub):  # the kind's own options first, then the common ones
            common = [n for n in names if n in ("name", "inputs")]
            names = [n for n in names if n not in common] + common + ["repeat"]
        name = loc[-1]
        top = not path and len(loc) == 1
        message = (f"unknown top-level key '{name}'" if top else f"unknown option '{name}'"
                   + (f" for {what}" if what and path else ""))
        errors.add(message, position(node, loc, fallback, at_key=True), where,
                   expected="one of: " + ", ".join(names), found=repr(name),
                   hint=did_you_mean(name, names))
        return
    if first["type"] == "missing":
        noun = "key" if not path else "option"
        errors.add(f"missing required {noun} '{field}'" + (f" for {what}" if what and path
                                                             else ""),
                   position(node, loc[:-1], fallback), where,
                   expected=f"'{loc[-1]}: ...'", found="nothing",
                   hint=f"add `{loc[-1]}:`" + (" with a list of layers"
                                                 if loc[-1] == "layers" else ""))
        return
    value = _value_at(data, loc, first)
    deeper = [e for e in group if e["member"] and e["sub"]]
    if deeper and isinstance(value, (list, dict)) and len(deeper) < len(group):
        # the container type fits one union member; the mistake is inside it
        e = max(deeper, key=lambda d: len(d["sub"]))
        sub_loc = loc + e["sub"]
        _report(model, sub_loc, [{**e, "member": False, "sub": ()}], data, node, errors, path,
                fallback, what)
        return
    pos = position(node, loc, fallback)
    literals = [e for e in group if e["type"] == "literal_error"]
    kinds = list(dict.fromkeys(_word(e) for e in group if e["type"] != "literal_error"))
    if literals and isinstance(value, str):
        allowed = re.findall(r"'([^']*)'", literals[0].get("ctx", {}).get("expected", ""))
        noun = field.split("[")[0] if field else "value"
        errors.add(f"unknown {noun} '{value}'", pos, where,
                   expected=", ".join(allowed) + (f", or {' or '.join(kinds)}" if kinds else ""),
                   found=repr(value),
                   hint=_kind_hint(noun, value) or did_you_mean(value, allowed)
                   or _hint(value, kinds))
        return
    if first["type"] in _RANGE:
        limit = first.get("ctx", {}).get("lt")
        errors.add(f"'{field}' is out of range", pos, where, expected=_expected(first),
                   found=describe(value),
                   hint=f"write a fraction: {value}% is {value / 100:g}" if limit == 1
                   and isinstance(value, int) and not isinstance(value, bool)
                   and 1 < value <= 100 else None)
        return
    words = [w for w in [_literal_words(e) for e in literals] + kinds if w]
    if len(group) == 1 and first["type"] not in _WORDS and first["type"] != "literal_error":
        errors.add(f"bad value for '{field}'", pos, where, expected=_expected(first),
                   found=describe(value), hint=_hint(value, words))
        return
    errors.add(f"'{field}' must be {' or '.join(words)}", pos, where,
               expected=" or ".join(words), found=describe(value), hint=_hint(value, words))


def _split_loc(loc: tuple, path: str) -> tuple[str, str]:
    """(path shown before the message, field named in it). Inside a layer the path is the
    node id; in the top level it is the part of `loc` that leads to the field."""
    if not loc:
        return path, ""
    cut = max((i for i, p in enumerate(loc) if isinstance(p, str)), default=0)
    if path:
        cut = 0
    field = str(loc[cut]) + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                    for p in loc[cut + 1:])
    where = path or ".".join(str(p) for p in loc[:cut])
    return where, field


def _value_at(data, loc, err):
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return err.get("input")
    return node


def _word(err) -> str:
    return _WORDS.get(err["type"]) or _expected(err)


def _literal_words(err) -> str:
    allowed = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
    return "one of " + ", ".join(allowed) if allowed else _expected(err)


def _kind_hint(noun: str, value: str) -> str | None:
    """`activation: prelu`: prelu learns its slope, so it is a layer of its own."""
    from archspec.layers.base import kinds

    if noun == "activation" and value in kinds():
        return f"{value} is a layer with its own parameters: add `- {value}` after this one"
    return None


def _hint(value, words) -> str | None:
    numeric = any(w in ("an integer", "a number") for w in words)
    if isinstance(value, str) and numeric and parses_as_float(value):
        return ("remove the quotes: archspec reads a quoted number as text and never "
                "converts it")
    if isinstance(value, bool) and numeric:
        return "YAML reads yes/no/on/off/true/false as booleans; write a number"
    if value is None:
        return "the value is empty; write one after the colon or remove the key"
    if (isinstance(value, float) and math.isfinite(value) and "an integer" in words
            and "a number" not in words):
        if value.is_integer():
            return f"write {int(value)} without the decimal point"
        return (f"use a whole number ({int(value)} or {int(value) + 1}); in an expression, "
                "round with int(), round(), floor() or ceil()")
    return None


def _model_at(model, loc) -> type[BaseModel] | None:
    """The pydantic model that describes the mapping at `loc` (through dicts, lists, unions)."""
    ann = model
    for part in loc:
        ann = _strip_optional(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            f = next((f for n, f in ann.model_fields.items() if part in (n, f.alias)), None)
            if f is None:
                return None
            ann = f.annotation
        elif typing.get_origin(ann) in (dict, list):
            ann = typing.get_args(ann)[-1]
        else:
            return None
    ann = _strip_optional(ann)
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _strip_optional(ann):
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return ann


def _is_layer_options(model) -> bool:
    from archspec.layers.base import Options
    return isinstance(model, type) and issubclass(model, Options)


def _expected(err) -> str:
    msg = err["msg"]
    for prefix in ("Input should be ", "Value error, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


