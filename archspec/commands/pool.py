"""`archspec pool`: a picture and its max, min and average pooled versions."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from archspec.commands.options import choose


def pool(*, image: Path, op: str, size: int, stride: Optional[int], output: Path) -> None:
    from archspec.fmt import fmt_dims
    from archspec.ui.render import console
    from archspec.viz import check_image_path
    from archspec.viz.pool import OPS, load, plot_pooling, pool_all

    ops = OPS if op == "all" else (choose(op, (*OPS, "all"), "--op"),)
    check_image_path(output)
    picture = load(image)
    results = pool_all(picture, ops, size, stride)
    plot_pooling(picture, results, size, stride, output, image.name)
    console.print(f"wrote {output}: {fmt_dims(picture.shape[:2])} -> " + ", ".join(
        f"{o} {fmt_dims(a.shape[:2])}" for o, a in results))
