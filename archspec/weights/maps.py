"""Name maps: which module of a foreign file holds each archspec layer, kept as data.

A map file (archspec/weights/maps/<source>_<family>.yaml, or the user's own) has a `layers`
table of archspec node patterns to module templates, first match wins:

    stage{s}.basic{b}.residual1.conv{n}: layer{s}.{b-1}.conv{n}

`{name}` in a pattern matches a whole number, `{name:w}` a word of letters and digits
(GoogLeNet's `3a`); `{expression}` in a template is arithmetic (+ - * // and parentheses)
over the numbers, or a word as it was matched. A layer no pattern matches has no name in
the file and is reported missing."""
from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from pathlib import Path

from archspec.errors import Pos
from archspec.weights.errors import WeightsError

MAPS = Path(__file__).resolve().parent / "maps"
OWN = "archspec"  # the map of archspec's own names and layouts (no conversion)
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.FloorDiv: operator.floordiv}


@dataclass
class Rule:
    pattern: re.Pattern
    template: str
    text: str


@dataclass
class NameMap:
    name: str        # "torchvision/resnet", or the file's path
    source: str      # torchvision, timm, ...: the layout convention the tensors are in
    fits: list       # the zoo specs it was written for
    rules: list

    def module(self, node_id: str) -> str | None:
        """The file's module name for one archspec node, or None."""
        for r in self.rules:
            m = r.pattern.fullmatch(node_id)
            if m:
                nums = {k: int(v) if v.isdigit() else v for k, v in m.groupdict().items()}
                return re.sub(r"\{([^{}]+)\}", lambda e: str(_eval(e.group(1), nums, r)),
                              r.template)
        return None


def _eval(expr: str, nums: dict, rule: Rule) -> int | str:
    def ev(n):
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.Name) and n.id in nums:
            return nums[n.id]
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            left, right = ev(n.left), ev(n.right)
            if isinstance(left, int) and isinstance(right, int):
                return _OPS[type(n.op)](left, right)
        raise WeightsError(f"name map rule '{rule.text}': cannot compute {{{expr}}}",
                           hint="templates use the pattern's {names}, whole numbers and "
                                "+ - * //")
    try:
        return ev(ast.parse(expr, mode="eval"))
    except SyntaxError:
        raise WeightsError(f"name map rule '{rule.text}': cannot compute {{{expr}}}") from None


def _compile(pattern: str) -> re.Pattern:
    parts = re.split(r"\{(\w+(?::w)?)\}", pattern)
    out = "".join(re.escape(p) if i % 2 == 0 else
                  f"(?P<{p[:-2]}>[A-Za-z0-9]+)" if p.endswith(":w") else f"(?P<{p}>\\d+)"
                  for i, p in enumerate(parts))
    return re.compile(out)


def read_map(path: Path, name: str | None = None) -> NameMap:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise WeightsError(f"{path}: cannot read the name map ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("layers"), dict):
        raise WeightsError(f"{path}: a name map needs a `layers` table of archspec layer "
                           "patterns to module names")
    rules = []
    for pat, tmpl in data["layers"].items():
        try:
            rules.append(Rule(_compile(str(pat)), str(tmpl), f"{pat}: {tmpl}"))
        except re.error as exc:
            raise WeightsError(f"{path}: bad pattern '{pat}' ({exc})") from None
    return NameMap(name or str(path), str(data.get("source", "torchvision")),
                   list(data.get("fits", [])), rules)


def shipped() -> dict[str, NameMap]:
    """Every map archspec ships, by name: torchvision/resnet, torchvision/vit, ..."""
    out = {}
    for p in sorted(MAPS.glob("*.yaml")):
        source, _, family = p.stem.partition("_")
        out[f"{source}/{family}"] = read_map(p, f"{source}/{family}")
    return out


def resolve_map(name: str, graph, param_nodes: list[str], pos: Pos | None = None) -> NameMap:
    """A map by name: a file, `source/family`, or a source alone (`torchvision`), for which
    the family is the one written for this spec, else the one that names the most layers."""
    if name.endswith((".yaml", ".yml")) or "/" in name and Path(name).exists():
        if not Path(name).is_file():
            raise WeightsError(f"name map {name}: no such file", pos=pos)
        return read_map(Path(name))
    maps = shipped()
    if name in maps:
        return maps[name]
    sources = sorted({m.source for m in maps.values()})
    family = [m for m in maps.values() if m.source == name]
    if not family:
        raise WeightsError(f"unknown name map '{name}'", pos=pos,
                           hint="a map file (.yaml), archspec, one of the sources "
                                f"({', '.join(sources)}) or one of: {', '.join(maps)}")
    for m in family:
        if graph.name in m.fits:
            return m
    named = {m.name: sum(m.module(n) is not None for n in param_nodes) for m in family}
    full = [m for m in family if named[m.name] == len(param_nodes) and param_nodes]
    if len(full) == 1:
        return full[0]
    hint = f"name the map (--map {name}/FAMILY) or give a map file"
    if full:
        raise WeightsError(f"several {name} name maps fit spec '{graph.name}': "
                           + ", ".join(m.name for m in full), pos=pos, hint=hint)
    best = max(family, key=lambda m: named[m.name])
    raise WeightsError(f"no {name} name map fits spec '{graph.name}' (the closest, {best.name}, "
                       f"names {named[best.name]} of its {len(param_nodes)} layers with "
                       "weights)", pos=pos, hint=hint)
