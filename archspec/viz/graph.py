"""`archspec graph SPEC -o net.svg`: the resolved graph as a diagram.

Every node is a box labelled with its name, its kind and key options (`conv 3×3/2, 64`)
and its output shape; skip connections (residual adds, identity branches, projection
shortcuts) are dashed red edges; heads are ovals. Repeated blocks can be collapsed: the
nodes sharing an id prefix at `depth` become one box, and consecutive identical blocks
(`stage2.bottleneck2`, `stage2.bottleneck3`, ...) one box with a count.

DOT and Mermaid are written as text; SVG, PNG and PDF are rendered by Graphviz's `dot`."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from archspec.fmt import fmt_dims, human
from archspec.layers import REGISTRY
from archspec.spec.graph import Graph, Node
from archspec.viz import PictureInputError, VizError

AUTO_COLLAPSE = 80      # nodes: bigger graphs are collapsed unless --no-collapse
TEXT_FORMATS = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid"}
RENDERED = {".svg": "svg", ".png": "png", ".pdf": "pdf"}

STYLE = {  # category (a kind's `category`) -> (fill, border)
    "input": ("#e6e6e6", "#888888"), "conv": ("#cfe2f3", "#3d85c6"),
    "pool": ("#d9ead3", "#6aa84f"), "dense": ("#fce5cd", "#e69138"),
    "norm": ("#eeeeee", "#999999"), "merge": ("#ead1dc", "#a64d79"),
    "activation": ("#fff2cc", "#bf9000"), "shape": ("#f3f3f3", "#999999"),
    "block": ("#d0e0e3", "#45818e"), "head": ("#f4cccc", "#cc0000"),
    "other": ("#ffffff", "#666666"),
}
SKIP_COLOR = "#c0392b"


@dataclass
class Box:
    id: str
    lines: list[str]
    category: str
    members: list[str] = field(default_factory=list)


@dataclass
class Edge:
    src: str
    dst: str
    skip: bool = False
    label: str = ""


@dataclass
class Diagram:
    name: str
    boxes: list[Box]
    edges: list[Edge]
    collapsed: bool = False


# --- labels ----------------------------------------------------------------------------------
def describe(node: Node, graph: Graph) -> str:
    """Kind and key options, as the kind labels itself: `conv 3×3/2, 64, relu`."""
    if node.kind == "input":
        return "input" + (f" ({node.dtype})" if node.dtype != "float32" else "")
    if node.opts is None:
        return node.kind
    src = graph.nodes.get(node.inputs[0]) if node.inputs else None
    rank = max(len(src.shape or ()) - 1, 1) if src is not None else 2
    return REGISTRY[node.kind].label(node.opts, rank,
                                     getattr(graph.defaults, "activation", None))


def category(kind: str) -> str:
    if kind == "input":
        return "input"
    layer = REGISTRY.get(kind)
    return layer.category if layer is not None and layer.category in STYLE else "other"


# --- structure -------------------------------------------------------------------------------
def skip_edges(graph: Graph) -> set[tuple[str, str]]:
    """Edges u -> v that bypass other layers: u also reaches v through another input of v
    (identity residuals, identity branch paths), and the edges of projection shortcuts."""
    order = {nid: k for k, nid in enumerate(graph.nodes)}
    children: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    for n in graph.nodes.values():
        for u in n.inputs:
            if u in children:
                children[u].append(n.id)

    def reaches(src: str, targets: set[str], limit: int) -> bool:
        seen, stack = set(), [src]
        while stack:
            x = stack.pop()
            for c in children.get(x, ()):
                if c in targets:
                    return True
                if c not in seen and order[c] < limit:
                    seen.add(c)
                    stack.append(c)
        return False

    out = set()
    for n in graph.nodes.values():
        if len(n.inputs) > 1:
            for u in n.inputs:
                others = {i for i in n.inputs if i != u}
                if u in order and reaches(u, others, order[n.id]):
                    out.add((u, n.id))
        for u in n.inputs:
            if _is_shortcut(n.id) or _is_shortcut(u):
                out.add((u, n.id))
    return out


def _is_shortcut(node_id: str) -> bool:
    return node_id.rsplit(".", 1)[-1].startswith("projection")


def _group_of(node_id: str, depth: int) -> str | None:
    parts = node_id.split(".")
    return ".".join(parts[:depth + 1]) if len(parts) > depth + 1 else None


def _stem(name: str) -> str:
    return re.sub(r"_?\d+$", "", name.rsplit(".", 1)[-1]) or name


def build_diagram(graph: Graph, collapse: bool | None = None, depth: int | None = None) -> Diagram:
    """`collapse=None`: collapse only graphs of more than AUTO_COLLAPSE nodes."""
    if collapse is None:
        collapse = depth is not None or len(graph.nodes) > AUTO_COLLAPSE
    depth = 1 if depth is None else depth
    skips = skip_edges(graph)
    unit_of: dict[str, str] = {}
    units: dict[str, list[str]] = {}          # unit id -> member node ids, in graph order
    for nid in graph.nodes:
        g = _group_of(nid, depth) if collapse else None
        key = g if g is not None else nid
        if g is not None and g in graph.nodes:  # a node named like the group: keep apart
            key = g + " (block)"
        unit_of[nid] = key
        units.setdefault(key, []).append(nid)
    counts: dict[str, int] = {}
    if collapse:
        units, unit_of, counts = _merge_repeats(graph, units, unit_of)
    boxes = [_box(graph, uid, members, counts.get(uid, 1),
                  collapse and (len(members) > 1 or members[0] != uid))
             for uid, members in units.items()]
    edges: dict[tuple[str, str], Edge] = {}
    for n in graph.nodes.values():
        for u in n.inputs:
            a, b = unit_of.get(u), unit_of[n.id]
            if a is None or a == b:
                continue
            skip = (u, n.id) in skips
            if (a, b) not in edges:
                edges[(a, b)] = Edge(a, b, skip)
            e = edges[(a, b)]
            e.skip = e.skip and skip   # between blocks: a skip only if nothing else flows
            if not e.skip:
                e.label = ""
            elif category(n.kind) == "merge":
                e.label = "shortcut" if _is_shortcut(u) else "skip"
    for name, head in graph.heads.items():
        hid = f"head:{name}"
        lines = [f"head: {name}", head.output]
        if head.shape:
            lines[-1] += f" · {fmt_dims(head.shape)}"
        if head.loss_weight != 1.0:
            lines.append(f"loss weight {head.loss_weight:g}")
        if head.train_only:
            lines.append("training only")
        boxes.append(Box(hid, lines, "head"))
        if head.node in unit_of:
            edges[(unit_of[head.node], hid)] = Edge(unit_of[head.node], hid)
    return Diagram(graph.name, boxes, list(edges.values()), collapse)


def _box(graph: Graph, uid: str, members: list[str], count: int, grouped: bool) -> Box:
    if not grouped:
        n = graph.nodes[members[0]]
        what = describe(n, graph)
        lines = [n.id, what] if what != n.id else [n.id]
        return Box(uid, lines + [fmt_dims(n.shape)], category(n.kind), members)
    last = graph.nodes[members[-1]]
    params = sum(graph.nodes[m].params for m in members)
    name = uid
    what = (f"{_stem(name.split('…')[0])} ×{count} · {len(members) // count} layers each" if count > 1
            else f"block · {len(members)} layers")
    lines = [name, what + (f" · {human(params, digits=1, space=False)} params" if params else ""), fmt_dims(last.shape)]
    return Box(uid, lines, "block", members)


def _signature(graph: Graph, members: list[str]):
    index = {m: k for k, m in enumerate(members)}
    return tuple((graph.nodes[m].kind, graph.nodes[m].shape,
                  tuple(index.get(i, -1) for i in graph.nodes[m].inputs)) for m in members)


def _merge_repeats(graph: Graph, units: dict, unit_of: dict):
    """Consecutive sibling blocks with the same stem and structure, each reading only the
    previous one's output, become one unit `first…last ×count`."""
    items = list(units.items())
    merged: list[tuple[str, list[str], int]] = []   # (first uid, members, count)
    last_uid = None
    for uid, members in items:
        if merged and len(members) > 1 and last_uid is not None:
            first, prev_members, count = merged[-1]
            prev_last = units[last_uid]
            same_parent = uid.rsplit(".", 1)[0] == first.rsplit(".", 1)[0] and "." in uid
            external = {i for m in members for i in graph.nodes[m].inputs if i not in members}
            if (same_parent and _stem(uid) == _stem(first) and len(prev_last) > 1
                    and _signature(graph, members) == _signature(graph, prev_last)
                    and external == {prev_last[-1]}):
                merged[-1] = (first, prev_members + members, count + 1)
                last_uid = uid
                continue
        merged.append((uid, list(members), 1))
        last_uid = uid
    new_units, new_unit_of, counts = {}, {}, {}
    for first, members, count in merged:
        key = first
        if count > 1:
            key = f"{first}…{unit_of[members[-1]].rsplit('.', 1)[-1]}"
            counts[key] = count
        new_units[key] = members
        for m in members:
            new_unit_of[m] = key
    return new_units, new_unit_of, counts


# --- text formats ----------------------------------------------------------------------------
def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(d: Diagram) -> str:
    out = [f"digraph {_dot_quote(d.name)} {{",
           f'  graph [rankdir=TB, fontname="Helvetica", fontsize=14, labelloc=t, '
           f'label={_dot_quote(d.name)}, nodesep=0.3, ranksep=0.35];',
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
           'margin="0.12,0.05"];',
           '  edge [color="#555555", arrowsize=0.7];']
    for b in d.boxes:
        fill, line = STYLE[b.category]
        shape = ", shape=ellipse" if b.category == "head" else ""
        shape = ", penwidth=2" if b.category == "block" else shape
        label = "\\n".join(s.replace("\\", "\\\\").replace('"', '\\"') for s in b.lines)
        out.append(f'  {_dot_quote(b.id)} [label="{label}", fillcolor="{fill}", '
                   f'color="{line}"{shape}];')
    for e in d.edges:
        attrs = ""
        if e.skip:
            attrs = f' [style=dashed, color="{SKIP_COLOR}", penwidth=1.4'
            attrs += (f', label=" {e.label}", fontcolor="{SKIP_COLOR}", fontsize=9]'
                      if e.label else "]")
        out.append(f"  {_dot_quote(e.src)} -> {_dot_quote(e.dst)}{attrs};")
    out.append("}")
    return "\n".join(out) + "\n"


def _mermaid_text(text: str) -> str:
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;"))


def to_mermaid(d: Diagram) -> str:
    ids = {b.id: f"n{k}" for k, b in enumerate(d.boxes)}
    out = ["---", f"title: {d.name}", "---", "flowchart TB"]
    for b in d.boxes:
        label = "<br/>".join(_mermaid_text(s) for s in b.lines)
        left, right = ('(["', '"])') if b.category == "head" else ('["', '"]')
        out.append(f"  {ids[b.id]}{left}{label}{right}")
    for e in d.edges:
        if e.skip:
            arrow = f"-. {e.label} .->" if e.label else "-.->"
        else:
            arrow = "-->"
        out.append(f"  {ids[e.src]} {arrow} {ids[e.dst]}")
    used = sorted({b.category for b in d.boxes})
    for cat in used:
        fill, line = STYLE[cat]
        out.append(f"  classDef {cat} fill:{fill},stroke:{line},color:#000")
        members = ",".join(ids[b.id] for b in d.boxes if b.category == cat)
        out.append(f"  class {members} {cat}")
    skips = [k for k, e in enumerate(d.edges) if e.skip]
    if skips:
        out.append(f"  linkStyle {','.join(map(str, skips))} stroke:{SKIP_COLOR},stroke-width:1.5px")
    return "\n".join(out) + "\n"


# --- output ----------------------------------------------------------------------------------
def output_format(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in TEXT_FORMATS:
        return TEXT_FORMATS[suffix]
    if suffix in RENDERED:
        return RENDERED[suffix]
    raise PictureInputError(f"cannot write a diagram as '{suffix or Path(path).name}'",
                   "end the -o file name with .svg, .png, .pdf (rendered by Graphviz), "
                   ".dot or .mmd (Mermaid)")


GRAPHVIZ_HINT = ("install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), "
                 "`brew install graphviz` (macOS) or `conda install graphviz`; "
                 "`pip install graphviz` is not enough, it needs the `dot` program. "
                 "Or write -o net.dot / net.mmd, which need nothing")


def render_graphviz(dot_text: str, fmt: str, output: Path) -> None:
    """SVG/PNG/PDF through Graphviz's `dot` program."""
    exe = shutil.which("dot")
    if exe is None:
        raise VizError(f"writing .{fmt} needs Graphviz's `dot` program, which is not installed",
                       GRAPHVIZ_HINT)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".dot", delete=False) as f:
        f.write(dot_text)
        src = f.name
    try:
        args = [exe, f"-T{fmt}", src, "-o", str(output)]
        if fmt == "png":
            args.insert(1, "-Gdpi=110")
        done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise VizError(f"running Graphviz failed: {exc}", GRAPHVIZ_HINT) from None
    finally:
        Path(src).unlink(missing_ok=True)
    if done.returncode != 0:
        raise VizError(f"Graphviz could not render the diagram: {done.stderr.strip()[:500]}",
                       "write -o net.dot and inspect it")


def write_diagram(d: Diagram, output: Path | None) -> str:
    """Write the diagram in the format the file name asks for; without a file, return DOT."""
    if output is None:
        return to_dot(d)
    fmt = output_format(output)
    if fmt in ("dot", "mermaid"):
        text = to_dot(d) if fmt == "dot" else to_mermaid(d)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text)
        except OSError as exc:
            raise VizError(f"cannot write {output}: {exc.strerror or exc}") from None
        return text
    render_graphviz(to_dot(d), fmt, output)
    return ""
