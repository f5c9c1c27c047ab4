"""The tables of `archspec summary`: one row per layer, then the totals."""
from __future__ import annotations

from fractions import Fraction

from rich.text import Text

from archspec.fmt import fmt_bytes, fmt_dims, human
from archspec.layers.base import GLOBAL
from archspec.ui.tables import Column, grid, table


def _axes(v) -> str:
    if not v:
        return ""
    if v == GLOBAL:
        return "global"
    return _number(v[0]) if len(set(v)) == 1 else "×".join(map(_number, v))


def _number(v) -> str:
    """A whole number, or a fraction of an input step after upsampling: 0.25, or 1/3 where a
    decimal would be cut."""
    if isinstance(v, Fraction) and v.denominator != 1:
        d = v.denominator
        while d % 2 == 0 or d % 5 == 0:
            d //= 2 if d % 2 == 0 else 5
        return f"{float(v):g}" if d == 1 else f"{v.numerator}/{v.denominator}"
    return str(v)


SUM = "Σ "  # marks a header row's numbers: totals of the rows under it, not added again


def _kind(r) -> str:
    if r.kind not in ("block", "head"):
        return (r.function or r.kind) + (", frozen" if r.frozen else "")
    kind = r.kind if r.header else f"{r.kind} ({r.children})"
    return kind + (", training only" if r.train_only and r.kind == "head" else "")


def summary_table(s):
    """Layer names fold when space is short; every number stays whole. Too narrow a terminal
    hides jump first, then RF, then MACs. A block's header row (its name in bold) shows its
    output shape and, marked Σ, the totals of the rows under it."""
    has_state = any(r.state for r in s.rows)
    cols = [Column("layer", "name"), Column("kind", "name"), Column("output shape", "number"),
            Column("params", "number")]
    cols += [Column("state", "number")] if has_state else []
    cols += [Column("MACs", "number", drop=1), Column("RF", "number", drop=2),
             Column("jump", "number", drop=3)]
    rows = []
    for r in s.rows:
        mark = SUM if r.header else ""
        name = "  " * r.depth + r.name.split(".")[-1]
        name = Text(name, style="bold") if r.header else name  # plain text renders faster
        cells = [name, _kind(r), fmt_dims(r.shape, "-"), f"{mark}{r.params:,}" if r.params else ""]
        cells += [f"{mark}{r.state:,}" if r.state else ""] if has_state else []
        rows.append([*cells, mark + human(r.macs) if r.macs else "", _axes(r.rf), _axes(r.jump)])
    caption = ("Σ: a block's totals over the rows under it (the totals below count each layer "
               "once)") if any(r.header for r in s.rows) else None
    return table(cols, rows, title=f"{s.name}" + (f"  ({s.source})" if s.source else ""),
                 caption=caption)


def summary_totals(s):
    aux = [name for name, h in s.heads.items() if h.get("train_only")]
    rows = [["trainable parameters", f"{s.trainable:,}"]]
    if s.frozen:
        rows.append(["frozen parameters", f"{s.frozen:,}  (freeze: never updated)"])
    if aux:
        rows.append(["  at inference", f"{s.inference_params:,}  (without {', '.join(aux)})"])
    rows += [["non-trainable state", f"{s.state:,}" + ("  (batch statistics)" if s.state else "")],
             ["parameter memory", fmt_bytes(s.param_bytes, 2) + "  (float32)"],
             ["activation memory", fmt_bytes(s.activation_bytes, 2)
              + " per example (forward, float32)"],
             ["MACs", f"{s.macs:,}  ({human(s.macs)} multiply-accumulates per example"
              + (" in training)" if aux else ")")]]
    if aux:
        rows.append(["  at inference", f"{s.inference_macs:,}  ({human(s.inference_macs)}, "
                                       f"without {', '.join(aux)})"])
    rows += [[f"input {name}", f"{fmt_dims(inp['shape'], '-')}  {inp['dtype']}"]
             for name, inp in s.inputs.items()]
    for name, h in s.heads.items():
        w = f", loss weight {h['loss_weight']:g}" if h["loss_weight"] != 1.0 else ""
        w += ", training only" if h.get("train_only") else ""
        rows.append([f"head {name}", f"{fmt_dims(h['shape'], '-')}  {h['output']}{w}"])
    return grid([Column("", "name", style="bold"), Column("", "number")], rows)
