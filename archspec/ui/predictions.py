"""The table of `archspec predict`: each example's most probable classes, or its values."""
from __future__ import annotations

import numpy as np

from archspec.ui.tables import Column, table


def predictions_table(result: dict):
    multi = len(result["heads"]) > 1
    cols = [Column("input", "name")] + ([Column("head", "name")] if multi else []) + [
        Column("prediction", "text")]
    rows = []
    for p in result["predictions"]:
        where = p["input"] + "".join(f" [{k} {p[k]}]" for k in ("index", "line") if k in p)
        for name, h in p["heads"].items():
            where_cell = where.replace("[", "\\[")
            rows.append([where_cell, name, _prediction(h)] if multi
                        else [where_cell, _prediction(h)])
    return table(cols, rows, title=f"{result['run']} ({result['checkpoint']} checkpoint, step "
                                   f"{result['step']})")


def _prediction(h: dict) -> str:
    """Top classes as "name 75.0%" (two spaces between classes), or the values."""
    if "top" in h:
        return "  ".join(f"{t['name'] if t['name'] is not None else t['class']} "
                         f"{t['probability']:.1%}" for t in h["top"])
    return ", ".join(f"{v:.6g}" for v in np.asarray(h["values"]).reshape(-1))


def print_predictions(result: dict, console) -> None:
    console.print(predictions_table(result))
