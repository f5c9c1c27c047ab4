"""Which function loads each dataset name, and which options it takes."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .options import SourceOptions
from .sources import builtin, cifar, csv_table, function, idx, image_folder, mnist1d, npz
from .sources import shape_masks
from .sources import shapes
from .sources import text, timeseries, video


@dataclass(frozen=True)
class Source:
    options: type[SourceOptions]
    load: Callable  # (cfg, options, input_shape, seed) -> Raw
    takes_path: bool


SOURCES: dict[str, Source] = {
    "digits": Source(SourceOptions, builtin.load_digits, False),
    "wine": Source(SourceOptions, builtin.load_wine, False),
    "breast_cancer": Source(SourceOptions, builtin.load_breast_cancer, False),
    "iris": Source(SourceOptions, builtin.load_iris, False),
    "shapes": Source(shapes.Options, shapes.load, False),
    "shapes_masks": Source(shape_masks.Options, shape_masks.load, False),
    "function": Source(function.Options, function.load, False),
    "timeseries": Source(timeseries.Options, timeseries.load, False),
    "text": Source(text.Options, text.load, False),
    "video": Source(video.Options, video.load, False),
    "mnist1d": Source(mnist1d.Options, mnist1d.load, False),
    "idx": Source(idx.Options, idx.load, True),
    "cifar": Source(cifar.Options, cifar.load, True),
    "image_folder": Source(image_folder.Options, image_folder.load, True),
    "npz": Source(npz.Options, npz.load, True),
    "csv": Source(csv_table.Options, csv_table.load, True),
}
