"""The layer reference tables of docs/spec.md, generated from the registry.

`python -m archspec.layers.reference` rewrites the text between the marker comments

    <!-- generated: kinds -->             every kind, its shorthand and its doc
    <!-- generated: options conv -->      one kind's options: type, default, meaning
    <!-- generated: activations -->       the activation table: parameters and f(x)
    <!-- /generated -->

from each kind's pydantic Options and docstring; everything outside the markers is prose and
stays as written. `--check` exits 1 when the file is not current (tests run it too).
"""
from __future__ import annotations

import re
import sys
import types
import typing
from pathlib import Path

from pydantic_core import PydanticUndefined

from archspec.layers import REGISTRY
from archspec.layers.base import InitSpec, IntOrList, Options, Padding

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec.md"
COMMAND = "python -m archspec.layers.reference"
_BLOCK = re.compile(r"(<!-- generated: ([^>]*?) -->\n).*?(<!-- /generated -->)", re.S)
_COMMON = set(Options.model_fields)  # name, inputs: documented once under "Layer items"


def _type(annotation) -> str:
    """An option's type as a reader writes it in YAML."""
    from archspec.layers.activation import ActivationSpec

    named = {IntOrList: "int or list", Padding: "`valid`, `same`, int or list",
             InitSpec: "initialiser", ActivationSpec: "activation"}
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):  # unset (None) is the default column's job
        rest = tuple(a for a in args if a is not type(None))
        whole = typing.Union[rest] if len(rest) > 1 else rest[0]
        for alias, text in named.items():
            if whole == alias:
                return text
        return " or ".join(_type(a) for a in rest)
    if origin is typing.Literal:
        return ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type(args[0])}"
    return {int: "int", float: "number", bool: "bool", str: "text"}.get(
        annotation, str(annotation).replace("|", "\\|"))


def _value(v) -> str:
    if isinstance(v, bool):
        return f"`{str(v).lower()}`"
    if isinstance(v, float):
        text = f"{v:g}".replace("e-0", "e-")
        return f"`{text}`" if "." in text or "e" in text else f"`{text}.0`"
    return f"`{v}`"


def _default_and_meaning(info) -> tuple[str, str]:
    """A description's trailing 'default: X' fills the default column of an unset option."""
    text = info.description or ""
    head, sep, tail = text.rpartition("default: ")
    if sep and (not head or head.endswith("; ")):
        text, given = head.removesuffix("; "), tail
    else:
        given = None
    if info.is_required():
        return "required", text
    if info.default is None or info.default is PydanticUndefined:
        return given or "–", text
    return _value(info.default), text


def options_table(kind: str) -> str:
    rows = ["| option | type | default | meaning |", "|---|---|---|---|"]
    for name, info in REGISTRY[kind].Options.model_fields.items():
        if name in _COMMON:
            continue
        default, meaning = _default_and_meaning(info)
        rows.append(f"| `{info.alias or name}` | {_type(info.annotation)} | {default} | "
                    f"{meaning} |")
    return "\n".join(rows) + "\n"


def kinds_table() -> str:
    rows = ["| kind | shorthand | what it does |", "|---|---|---|"]
    for kind, layer in REGISTRY.items():
        short = f"`{layer.shorthand}`" if layer.shorthand else ""
        rows.append(f"| `{kind}` | {short} | {layer.doc} |")
    return "\n".join(rows) + "\n"


def activations_table() -> str:
    from archspec.layers.activation import ACTIVATIONS, alias_of

    rows = ["| function | parameters (default) | f(x) |", "|---|---|---|"]
    for name, fn in ACTIVATIONS.items():
        params = ", ".join(f"`{k}` ({v:g})" if isinstance(v, float) else
                           f"`{k}` ({v}; or {', '.join(c for c in fn.choices[k] if c != v)})"
                           for k, v in fn.params.items()) or "–"
        alias = alias_of(name)
        rows.append(f"| `{name}` | {params} | "
                    + (f"another name for `{alias}`" if alias else fn.formula) + " |")
    return "\n".join(rows) + "\n"


def _generated(what: str) -> str:
    words = what.split()
    if words == ["kinds"]:
        return kinds_table()
    if words == ["activations"]:
        return activations_table()
    if words[:1] == ["options"] and len(words) == 2 and words[1] in REGISTRY:
        return options_table(words[1])
    raise ValueError(f"docs/spec.md: unknown generated block '{what}'")


def fill_tables(text: str) -> str:
    """`text` with every generated block rewritten from the registry."""
    return _BLOCK.sub(lambda m: m.group(1) + _generated(m.group(2)) + m.group(3), text)


def main(argv: list[str]) -> int:
    text = DOC.read_text()
    new = fill_tables(text)
    if "--check" in argv:
        if new != text:
            print(f"{DOC} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if new != text:
        DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
