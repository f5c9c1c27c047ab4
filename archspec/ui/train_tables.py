"""The tables of a training run: one row per epoch, and the final summary."""
from __future__ import annotations

from archspec.ui.runs import STATUS_STYLE, fmt_metric
from archspec.ui.tables import Column, FitTable, grid, table


def pct(v) -> str:
    return f"{100 * v:.2f}%" if v is not None else "-"


def main_iou(metrics: dict):
    """The first per-pixel head's mean IoU in a metrics dict (None: no such head)."""
    return next((v for k, v in metrics.items() if k.startswith("mean_iou")), None)


def main_accuracy(metrics: dict):
    """The first head's accuracy in a metrics dict (None: no classification head)."""
    return next((v for k, v in metrics.items() if k.startswith("accuracy")), None)


def worst_dead(tr: dict) -> str:
    dead = tr.get("dead_units") or {}
    if not dead:
        return "-"
    layer = max(dead, key=dead.get)
    return f"{100 * dead[layer]:.0f}% {layer.split('.')[-1]}"


def epoch_line(epoch: int, epochs: int, row: dict) -> str:
    """The line printed as an epoch ends."""
    tr, val = row["train"], row.get("val")
    text = (f"epoch {epoch:>3}/{epochs}  train loss {tr['loss']:.4f}"
            f" acc {pct(main_accuracy(tr))}")
    if val:
        text += f"  │ val loss {val['loss']:.4f} acc {pct(main_accuracy(val))}"
        if main_iou(val) is not None:
            text += f" IoU {main_iou(val):.3f}"
    text += f"  │ {tr['examples_per_s']:,.0f} ex/s"
    dead = tr.get("dead_units") or {}
    if dead:
        layer = max(dead, key=dead.get)
        if dead[layer] > 0:
            text += f"  │ dead {100 * dead[layer]:.0f}% ({layer})"
    return text


def epochs_table(rows: list[tuple[int, dict]]) -> FitTable:
    columns = [Column(c, "number") for c in ("epoch", "train loss", "train acc", "val loss",
                                              "val acc", "lr", "ex/s", "grad norm")]
    columns.append(Column("dead units", "name", justify="right"))
    cells = []
    for epoch, row in rows:
        tr, val = row["train"], row.get("val") or {}
        cells.append([str(epoch), f"{tr['loss']:.4f}", pct(main_accuracy(tr)),
                      f"{val['loss']:.4f}" if val else "-",
                      pct(main_accuracy(val)) if val else "-", f"{tr['lr']:.2e}",
                      f"{tr['examples_per_s']:,.0f}",
                      f"{tr.get('grad_norm', float('nan')):.3g}", worst_dead(tr)])
    return table(columns, cells, "epochs")


STATUS = {"collapsed": "collapsed (no restarts left)",
          "diverged": "diverged (no restarts left)",
          "stalled": "stalled at chance accuracy (no restarts left)"}


def result_table(result) -> FitTable:
    """Where the run is, how it ended, its speed and its test score."""
    rows = [["run", str(result.run_dir)]]
    status = (f"stopped (resume with: archspec train --resume {result.run_dir})"
              if result.outcome == "stopped" else f"pruned ({result.pruned})"
              if result.outcome == "pruned" else STATUS.get(result.outcome, result.outcome))
    rows.append(["status", status])
    if result.state is not None:
        rows.append(["time", f"{result.seconds:.1f} s  ({result.examples_per_s:,.0f} "
                             "examples/s)"])
    if result.test:
        acc = main_accuracy(result.test)
        rows.append([scored_label("test", *result.test_checkpoint), f"loss {result.test['loss']:.4f}" +
                     (f", accuracy {pct(acc)}" if acc is not None else "") +
                     (f", mean IoU {iou:.4f}" if (iou := main_iou(result.test)) is not None
                      else "") +
                     f"  ({int(result.test['examples'])} examples)"])
    return grid([Column("", "name", style="bold"), Column("", "text")], rows)


def scored_label(split: str, checkpoint: str, step: int) -> str:
    """Which weights a score belongs to, in the words `train` and `eval` share."""
    return f"{split} ({checkpoint} checkpoint, step {step})"


def header_line(setup) -> str:
    """What is about to train: model, parameters, data splits, steps, devices."""
    ds = setup.dataset
    return (f"[bold]{setup.exp.name}[/bold]: {setup.graph.name}, "
            f"{setup.graph.total('params'):,} parameters, {ds.name} ({len(ds.train.x)} train / "
            f"{len(ds.val.x)} val / {len(ds.test.x)} test), "
            f"{setup.total_steps} steps on {setup.mesh.devices.size} device(s)")


def slow_step_notice(setup) -> str | None:
    """Said before a run whose steps will be slow on this device, with the estimate and
    how to make them cheaper."""
    from archspec.use.estimate import SLOW_STEP_S, estimate_step, smaller_input

    macs = setup.graph.total("macs")
    est = estimate_step(macs, setup.exp.batch_size)
    if est is None or est.seconds < SLOW_STEP_S:
        return None
    (inp,) = setup.graph.inputs.values()
    shape = tuple(inp.shape)
    text = (f"[yellow]note:[/yellow] {setup.graph.name} at {'×'.join(map(str, shape))} needs "
            f"{macs / 1e9:,.2f} G MACs per example, {est.flops / 1e12:,.2f} T FLOPs per step of "
            f"{setup.exp.batch_size}: at least {est.seconds:,.1f} s per step on this "
            f"{est.device} ({est.rate / 1e9:,.0f} GFLOP/s measured on a matmul; convolutions "
            f"usually run slower), {_duration(est.seconds * setup.total_steps)} for "
            f"{setup.total_steps} steps, plus compiling")
    small = smaller_input(shape)
    if small:
        ratio = (shape[0] * shape[1]) / (small[0] * small[1])
        text += (f"\n    hint: try --input-shape {','.join(map(str, small))} first "
                 f"(about {ratio:,.0f}× fewer FLOPs per step)")
    return text


def sweep_table(sweep, points, rows: list[dict]) -> FitTable:
    """One row per point of a sweep (rows: commands.sweep.summary_rows); ★ marks the best
    validation score."""
    scored = [r for r in rows if r.get("best_val") is not None]
    best = None
    if scored:
        loss = scored[0].get("val_metric") == "loss"
        best = (min if loss else max)(scored, key=lambda r: r["best_val"])["index"]
    cells = []
    for p, r in zip(points, rows):
        status = r.get("status", "not run")
        cells.append([str(p.index), p.id, p.describe(),
                      fmt_metric(r.get("val_metric"), r.get("best_val"))
                      + (" ★" if p.index == best else ""),
                      fmt_metric(r.get("test_metric"), r.get("test")),
                      f"{r['seconds']:.1f} s" if r.get("seconds") is not None else "-",
                      f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"])
    columns = [Column("#", "number"), Column("point", "name"), Column("overrides", "text"),
               Column("best val", "number"), Column("test", "number"),
               Column("time", "number"), Column("status", "name")]
    return table(columns, cells, f"sweep {sweep.name}: {len(points)} points in {sweep.folder}")



def _duration(seconds: float) -> str:
    return f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"
