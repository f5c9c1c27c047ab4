"""`archspec maps`: feature maps of chosen layers of a trained run for one input."""
from __future__ import annotations

from pathlib import Path

from archspec.commands.options import choose


def maps(*, run_dir: Path, image: Path, layer: list[str], output: Path, checkpoint: str,
         invert: bool) -> None:
    from archspec.fmt import fmt_dims
    from archspec.ui.render import console, warn
    from archspec.viz import check_image_path
    from archspec.viz.maps import feature_maps, output_paths, plot_layer

    choose(checkpoint, ("best", "latest"), "--checkpoint")
    check_image_path(output)
    found, prediction, which = feature_maps(run_dir, image, layer, checkpoint, invert, warn)
    caption = f"input {image.name}" + (f" · predicted {prediction}" if prediction else "")
    for m, path in zip(found, output_paths(output, found)):
        plot_layer(m, path, caption)
        console.print(f"wrote {path}: {m.node_id} ({m.description}), {fmt_dims(m.values.shape)}")
    if prediction:
        console.print(f"prediction ({which} checkpoint): {prediction}")
