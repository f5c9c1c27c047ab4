"""Everything a person reads in the terminal: rich tables and located errors."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from archspec.errors import SpecError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line
console = Console(highlight=False, soft_wrap=True)


def _print_located(e: SpecError, label: str, style: str, fields=("expected", "found", "hint")):
    head = Text()
    if e.pos:
        head.append(f"{e.pos}: ", style="bold")
    head.append(f"{label}: ", style=style)
    if e.path:
        head.append(f"{e.path}: ", style="cyan")
    head.append(e.message)
    err_console.print(head)
    styles = {"expected": "green", "found": "red", "hint": "yellow"}
    for name in fields:
        value = getattr(e, name)
        if value is not None:
            err_console.print(Text(f"    {name + ':':<10}", style="dim") + Text(str(value), style=styles[name]))


def print_errors(errors: list[SpecError], file_label: str | None = None) -> None:
    for e in errors:
        _print_located(e, "error", "bold red")
    n = len(errors)
    err_console.print(Text(f"{n} error{'s' if n != 1 else ''}" +
                           (f" in {file_label}" if file_label else ""), style="bold red"))


def print_warnings(warnings: list[SpecError]) -> None:
    """Located warnings: the layout of errors, on stderr, without ending the command."""
    for w in warnings:
        _print_located(w, "warning", "bold yellow", fields=("hint",))


def human(n: float, unit: str = "") -> str:
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:g} {unit}".strip()


def human_bytes(n: int) -> str:
    for suffix, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {suffix}"
    return f"{n} B"


def _shape(s) -> str:
    return "×".join(str(x) for x in s) if s else "-"


def _axes(v) -> str:
    if not v:
        return ""
    return str(v[0]) if len(set(v)) == 1 else "×".join(map(str, v))


def summary_table(s) -> Table:
    t = Table(title=f"{s.name}" + (f"  ({s.source})" if s.source else ""), title_justify="left",
              show_lines=False, header_style="bold")
    has_state = any(r.state for r in s.rows)
    cols = [("layer", "left"), ("kind", "left"), ("output shape", "right"), ("params", "right")]
    cols += [("state", "right")] if has_state else []
    cols += [("MACs", "right"), ("RF", "right"), ("jump", "right")]
    for col, just in cols:
        t.add_column(col, justify=just, no_wrap=True)
    for r in s.rows:
        name = "  " * r.depth + r.name.split(".")[-1] if r.kind != "block" else r.name
        kind = f"block ({r.children})" if r.kind == "block" else r.kind
        cells = [name, kind, _shape(r.shape), f"{r.params:,}" if r.params else ""]
        cells += [f"{r.state:,}" if r.state else ""] if has_state else []
        t.add_row(*cells, human(r.macs) if r.macs else "", _axes(r.rf), _axes(r.jump))
    return t


def summary_totals(s) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("trainable parameters", f"{s.trainable:,}")
    t.add_row("non-trainable state", f"{s.state:,}" + ("  (batch statistics)" if s.state else ""))
    t.add_row("parameter memory", human_bytes(s.param_bytes) + "  (float32)")
    t.add_row("activation memory", human_bytes(s.activation_bytes) + " per example (forward, float32)")
    t.add_row("MACs", f"{s.macs:,}  ({human(s.macs)} multiply-accumulates per example)")
    for name, inp in s.inputs.items():
        t.add_row(f"input {name}", f"{_shape(inp['shape'])}  {inp['dtype']}")
    for name, h in s.heads.items():
        w = f", loss weight {h['loss_weight']:g}" if h["loss_weight"] != 1.0 else ""
        t.add_row(f"head {name}", f"{_shape(h['shape'])}  {h['output']}{w}")
    return t


def print_problem(label: str, message: str, hint: str | None = None, where: str = "") -> None:
    head = Text()
    if where:
        head.append(f"{where}: ", style="bold")
    head.append(f"{label}: ", style="bold red")
    head.append(message)
    err_console.print(head)
    if hint:
        err_console.print(Text("    hint:     ", style="dim") + Text(hint, style="yellow"))


def eval_tables(out: dict) -> list:
    m, rep = out["metrics"], out["report"]
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("split", f"{out['split']} ({int(m['examples'])} examples), checkpoint "
                          f"{out['checkpoint']} at step {out['step']}")
    head.add_row("loss", f"{m['loss']:.4f}")
    tables = [head]
    if "confusion" in rep:
        head.add_row("accuracy", f"{100 * rep['accuracy']:.2f}%")
        names = out.get("class_names") or [str(i) for i in range(len(rep["precision"]))]
        per = Table(title="per class", title_justify="left", header_style="bold")
        for c in ("class", "precision", "recall", "support"):
            per.add_column(c, justify="right")
        for i, name in enumerate(names[:len(rep["precision"])]):
            per.add_row(str(name), f"{rep['precision'][i]:.3f}", f"{rep['recall'][i]:.3f}",
                        str(rep["support"][i]))
        cm = Table(title="confusion matrix (rows: true, columns: predicted)",
                   title_justify="left", header_style="bold")
        cm.add_column("")
        for name in names[:len(rep["confusion"])]:
            cm.add_column(str(name), justify="right")
        for name, row in zip(names, rep["confusion"]):
            cm.add_row(str(name), *[str(v) if v else "·" for v in row])
        tables += [per, cm]
    else:
        head.add_row("MSE", f"{rep['mse']:.6g}")
        head.add_row("MAE", f"{rep['mae']:.6g}")
    dead = out.get("dead_units") or {}
    if dead:
        t = Table(title="dead ReLU units (zero for every example of the split)",
                  title_justify="left", header_style="bold")
        t.add_column("layer")
        t.add_column("dead", justify="right")
        for layer, frac in dead.items():
            t.add_row(layer, f"{100 * frac:.1f}%")
        tables.append(t)
    return tables
