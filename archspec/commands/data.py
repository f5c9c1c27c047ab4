"""`archspec data show`: the splits' sizes and class balance, and a picture of the first
training batch as the model receives it."""
from __future__ import annotations

from pathlib import Path
from typing import List

from archspec.commands.options import at_least


def show(*, file: Path, output: Path, count: int, set_: List[str]) -> None:
    at_least(count, 1, "--count", "count must be >= 1")
    from archspec.experiment import load as experiment
    from archspec.train.setup import prepare_loaded
    from archspec.ui.render import console
    from archspec.ui.tables import Column, table
    from archspec.viz import check_image_path
    from archspec.viz.examples import balance, draw, first_batch

    check_image_path(output)
    setup = prepare_loaded(experiment.load(file, list(set_)))
    ds = setup.dataset
    console.print(f"[bold]{ds.name}[/bold]: input {'×'.join(map(str, ds.input_shape))}, "
                  f"{ds.task}" + (f", {ds.num_classes} classes" if ds.num_classes else ""))
    splits = balance(ds)
    columns = [Column("class", "name")] + [Column(b.split, "number") for b in splits]
    names = list(dict.fromkeys(c for b in splits for c in b.counts))
    rows = [[c] + [f"{b.counts.get(c, 0):,}" for b in splits] for c in names]
    rows.append(["[bold]all[/bold]"] + [f"{b.examples:,}" for b in splits])
    console.print(table(columns, rows, title="examples per split"))
    n = min(count, setup.exp.batch_size)
    pixels, labels = first_batch(setup, n)
    path = draw(ds, pixels, labels, output)
    steps = ", ".join(s.op[0] for s in setup.exp.augment) or "no augmentation"
    console.print(f"wrote {path}: the first {n} examples of step 1 ({steps})")
