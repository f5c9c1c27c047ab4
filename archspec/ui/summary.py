"""The tables of `archspec summary`: one row per layer, then the totals."""
from __future__ import annotations

from archspec.fmt import fmt_bytes, fmt_dims, human
from archspec.ui.tables import Column, grid, table


def _axes(v) -> str:
    if not v:
        return ""
    return str(v[0]) if len(set(v)) == 1 else "×".join(map(str, v))


def summary_table(s):
    """Layer names fold when space is short; every number stays whole. Too narrow a terminal
    hides jump first, then RF, then MACs."""
    has_state = any(r.state for r in s.rows)
    cols = [Column("layer", "name"), Column("kind", "name"), Column("output shape", "number"),
            Column("params", "number")]
    cols += [Column("state", "number")] if has_state else []
    cols += [Column("MACs", "number", drop=1), Column("RF", "number", drop=2),
             Column("jump", "number", drop=3)]
    rows = []
    for r in s.rows:
        name = "  " * r.depth + r.name.split(".")[-1] if r.kind != "block" else r.name
        kind = f"block ({r.children})" if r.kind == "block" else r.kind
        cells = [name, kind, fmt_dims(r.shape, "-"), f"{r.params:,}" if r.params else ""]
        cells += [f"{r.state:,}" if r.state else ""] if has_state else []
        rows.append([*cells, human(r.macs) if r.macs else "", _axes(r.rf), _axes(r.jump)])
    return table(cols, rows, title=f"{s.name}" + (f"  ({s.source})" if s.source else ""))


def summary_totals(s):
    rows = [["trainable parameters", f"{s.trainable:,}"],
            ["non-trainable state", f"{s.state:,}" + ("  (batch statistics)" if s.state else "")],
            ["parameter memory", fmt_bytes(s.param_bytes, 2) + "  (float32)"],
            ["activation memory", fmt_bytes(s.activation_bytes, 2)
             + " per example (forward, float32)"],
            ["MACs", f"{s.macs:,}  ({human(s.macs)} multiply-accumulates per example)"]]
    rows += [[f"input {name}", f"{fmt_dims(inp['shape'], '-')}  {inp['dtype']}"]
             for name, inp in s.inputs.items()]
    for name, h in s.heads.items():
        w = f", loss weight {h['loss_weight']:g}" if h["loss_weight"] != 1.0 else ""
        rows.append([f"head {name}", f"{fmt_dims(h['shape'], '-')}  {h['output']}{w}"])
    return grid([Column("", "name", style="bold"), Column("", "number")], rows)
