"""The tables of `archspec eval`: the split's metrics, per-class scores, confusion matrix,
dead ReLU units."""
from __future__ import annotations

from archspec.ui.tables import Column, grid, table
from archspec.ui.train_tables import main_iou, scored_label


def eval_tables(out: dict) -> list:
    m, rep = out["metrics"], out["report"]
    head = [["split", f"{scored_label(out['split'], out['checkpoint'], out['step'])}, "
                      f"{int(m['examples'])} examples"],
            ["loss", f"{m['loss']:.4f}"]]
    if out.get("status") not in (None, "finished"):   # a pruned, stopped or failed run
        head.insert(0, ["run", out["status"] + (f" ({out['why']})" if out.get("why") else "")])
    tables = []
    if "confusion" in rep:
        head.append(["accuracy", f"{100 * rep['accuracy']:.2f}%"])
        iou = main_iou(m)
        if iou is not None:  # a per-pixel head: its accuracy and confusion count pixels
            head.append(["mean IoU", f"{iou:.4f}"])
        names = out.get("class_names") or [str(i) for i in range(len(rep["precision"]))]
        tables += [_per_class(rep, names), _confusion(rep, names)]
    else:
        head += [["MSE", f"{rep['mse']:.6g}"], ["MAE", f"{rep['mae']:.6g}"]]
    dead = out.get("dead_units") or {}
    if dead:
        tables.append(table([Column("layer", "name"), Column("dead", "number")],
                            [[layer, f"{100 * frac:.1f}%"] for layer, frac in dead.items()],
                            title="dead ReLU units (zero for every example of the split)"))
    return [grid([Column("", "name", style="bold"), Column("", "text")], head), *tables]


def _per_class(rep: dict, names) -> object:
    rows = [[str(name), f"{rep['precision'][i]:.3f}", f"{rep['recall'][i]:.3f}",
             str(rep["support"][i])] for i, name in enumerate(names[:len(rep["precision"])])]
    cols = [Column("class", "name", justify="right")] + [
        Column(c, "number") for c in ("precision", "recall", "support")]
    return table(cols, rows, title="per class")


def _confusion(rep: dict, names) -> object:
    cols = [Column("", "name")] + [Column(str(n), "number")
                                   for n in names[:len(rep["confusion"])]]
    rows = [[str(name), *[str(v) if v else "·" for v in row]]
            for name, row in zip(names, rep["confusion"])]
    return table(cols, rows, title="confusion matrix (rows: true, columns: predicted)")
