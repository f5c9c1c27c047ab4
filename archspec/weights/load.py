"""Loading a tensor file into a spec's variables, all or nothing, and its reverse.

`load_into` is what an experiment's `init:` key calls:

    new_vars, report = load_into(graph, variables, "resnet18.safetensors",
                                 map="torchvision", skip=["fc"], pos=init_pos)
    print(report.line())   # loaded 60/62 tensors ...: 11,176,512 of 11,689,512 parameters

Every gap is named at once (missing, unexpected and wrong-shape tensors, with the spec's
path, the file's key and both shapes); with `strict` any gap not declared in `skip` is an
error, without it the gaps are in the report and the layers keep their initial values."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archspec.errors import Pos
from archspec.fmt import fmt_shape
from archspec.spec.graph import matches
from archspec.weights import plan
from archspec.weights.errors import WeightsError
from archspec.weights.maps import OWN, NameMap, resolve_map
from archspec.weights.read import read_tensors

SKIP_HINT = ("declare the layers you replace with skip: [fc] (they keep their initial "
             "values), or strict: false")


@dataclass
class Coverage:
    """What a load filled: the report's counts and every gap, each a printable line."""

    file: str
    map: str
    tensors: int = 0
    tensors_total: int = 0
    params: int = 0
    params_total: int = 0
    state: int = 0
    state_total: int = 0
    skipped: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    wrong_shape: list = field(default_factory=list)

    @property
    def gaps(self) -> list[str]:
        return ([f"wrong shape: {g}" for g in self.wrong_shape] + [f"missing: {g}" for g in
                                                                   self.missing]
                + [f"unexpected: {g}" for g in self.unexpected])

    def line(self) -> str:
        pct = 100.0 * self.params / self.params_total if self.params_total else 100.0
        text = (f"loaded {self.tensors}/{self.tensors_total} tensors from {self.file} "
                f"({self.map}): {self.params:,} of {self.params_total:,} parameters "
                f"({pct:.1f}%)")
        if self.state_total:
            text += f", {self.state:,} of {self.state_total:,} batch statistics"
        if self.skipped:
            text += f"; skipped: {', '.join(self.skipped)}"
        return text

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def skipped(node_id: str, skip) -> bool:
    """A glob names a layer (`fc`, `stage4.*`) and everything inside a block (`stage4`)."""
    return matches(node_id, skip)


def _strip_prefix(tensors: dict) -> dict:
    """nn.DataParallel saves every key under `module.`: read them without it."""
    if tensors and all(k.startswith("module.") for k in tensors):
        return {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def _namemap(map_name: str, graph, specvars: dict, pos) -> NameMap:
    if map_name == OWN:
        return NameMap(OWN, OWN, [], [])
    nodes = list(dict.fromkeys(t[1] for t in specvars))
    namemap = resolve_map(map_name, graph, nodes, pos)
    traps = plan.padding_traps(graph)
    if traps:
        raise WeightsError(
            f"{namemap.source} weights would compute something else in: " + "; ".join(traps),
            pos=pos, hint="PyTorch pads a strided layer symmetrically, XLA's `same` puts the "
                          "odd pad at the end: write the padding out (padding: 1)")
    return namemap


def match(graph, variables, tensors: dict, map_name: str = "torchvision", skip=(),
          file_label: str = "", pos: Pos | None = None):
    """(values by target, Coverage): the file's tensors converted to the spec's variables."""
    specvars = plan.spec_variables(variables)
    namemap = _namemap(map_name, graph, specvars, pos)
    report = Coverage(file_label, namemap.name)
    claimed, values = set(), {}
    for slot in plan.slots(graph, specvars, namemap):
        if slot.key is not None:
            claimed.add(slot.key)
        if not slot.targets:
            continue
        _count(report, slot, total=True)
        if skipped(slot.node, skip):
            report.skipped.append(slot.node)
            continue
        _fill(report, slot, tensors, values)
    report.skipped = list(dict.fromkeys(report.skipped))
    report.unexpected = [f"{k} {fmt_shape(np.shape(v))}: no layer of the spec reads it"
                         for k, v in tensors.items() if k not in claimed]
    return values, report


def _fill(report, slot, tensors, values) -> None:
    spec = ", ".join(f"{'/'.join(t)} {fmt_shape(s)}" for t, s in zip(slot.targets, slot.shapes))
    if slot.key is None:
        report.missing.append(f"{slot.node} ({slot.kind}) {spec}: the name map has no name "
                              "for this layer")
        return
    if slot.key not in tensors:
        report.missing.append(f"{slot.key} {fmt_shape(slot.file_shape)} -> {spec}")
        return
    found = np.shape(tensors[slot.key])
    if not plan.shape_fits(slot, found):
        report.wrong_shape.append(f"{slot.key} -> {spec}: the spec needs "
                                  f"{fmt_shape(slot.file_shape)} in the file, the file has "
                                  f"{fmt_shape(found)}")
        return
    arr = np.asarray(tensors[slot.key])
    if slot.piece is None:
        got = (arr,)
    else:
        got = slot.piece.load(arr.reshape(slot.file_shape), np)
    for t, s, v in zip(slot.targets, slot.shapes, got):
        values[t] = np.asarray(v).reshape(s)
    _count(report, slot, total=False)


def _count(report, slot, total: bool) -> None:
    for t, s in zip(slot.targets, slot.shapes):
        n = math.prod(s)
        if t[0] == "params":
            if total:
                report.params_total += n
            else:
                report.params += n
        elif total:
            report.state_total += n
        else:
            report.state += n
    if total:
        report.tensors_total += len(slot.targets)
    else:
        report.tensors += len(slot.targets)


def replace_leaves(variables, values: dict):
    """A copy of `variables` with the leaves at `values`' targets replaced (same dtypes)."""
    import jax.numpy as jnp

    def walk(tree, prefix):
        out = {}
        for k, v in tree.items():
            path = prefix + (k,)
            if hasattr(v, "items"):
                out[k] = walk(v, path)
            elif path in values:
                out[k] = jnp.asarray(values[path], dtype=v.dtype)
            else:
                out[k] = v
        return out

    return walk(variables, ())


def load_into(graph, variables, path, format: str | None = None, map: str = "torchvision",
              skip=(), strict: bool = True, pos: Pos | None = None):
    """Load a tensor file into a spec's variables: (new variables, Coverage).

    graph: the resolved spec (archspec.spec.resolve.load_architecture); variables: the
    model's variables ({"params": ..., "batch_stats": ...}, as SpecModel.init returns them,
    without scan_blocks); path/format: the file (safetensors, npz, torch; None: from its
    bytes); map: a name map (torchvision, torchvision/resnet, a .yaml file, or archspec for
    archspec's own names); skip: layer globs that keep their initial values; strict: any
    gap not skipped is an error (False: gaps are listed in the report only); pos: where the
    request is written (the experiment's `init:` line), for the error."""
    values, report = fit(graph, variables, path, format, map, skip, strict, pos)
    return replace_leaves(variables, values), report


def fit(graph, variables, path, format: str | None = None, map: str = "torchvision",
        skip=(), strict: bool = True, pos: Pos | None = None):
    """(values by variable path, Coverage): load_into's reading and checking, without
    touching `variables` (their shapes are enough: jax.eval_shape's will do)."""
    try:
        tensors = _strip_prefix(read_tensors(path, format))
        values, report = match(graph, variables, tensors, map, skip, Path(path).name, pos)
    except WeightsError as exc:
        exc.pos = exc.pos or pos
        raise
    if strict and report.gaps:
        raise WeightsError(mismatch_text(report), pos=pos, hint=SKIP_HINT)
    if not values:
        raise WeightsError(f"{path}: no tensor of the file fits the spec ({report.map})",
                           pos=pos, hint="check the map (archspec, for a file archspec "
                           "exported) and the spec")
    return values, report


def mismatch_text(report: Coverage) -> str:
    counts = ", ".join(f"{len(v)} {name}" for name, v in (
        ("wrong shape", report.wrong_shape), ("missing", report.missing),
        ("unexpected", report.unexpected)) if v)
    return (f"{report.file} does not fit the spec ({report.map}): {counts}\n"
            + "\n".join(f"  {g}" for g in report.gaps))


def export_tensors(graph, variables, map: str = "torchvision") -> dict[str, np.ndarray]:
    """The spec's variables in a foreign file's names and layouts (the reverse of
    load_into), ready for write_tensors; every layer must have a name in the map."""
    specvars = plan.spec_variables(variables)
    namemap = _namemap(map, graph, specvars, None)
    flat = {t: np.asarray(_get(variables, t)) for t in specvars}
    out, unnamed = {}, []
    for slot in plan.slots(graph, specvars, namemap):
        if slot.key is None:
            unnamed.append(slot.node)
            continue
        vals = tuple(flat[t] for t in slot.targets)
        out[slot.key] = np.asarray(vals[0] if slot.piece is None else slot.piece.save(vals, np))
    if unnamed:
        raise WeightsError(f"the name map {namemap.name} has no name for: "
                           + ", ".join(dict.fromkeys(unnamed)),
                           hint="export with --map archspec, or add the layers to a map file")
    return out


def _get(tree, target):
    for k in target:
        tree = tree[k]
    return tree
