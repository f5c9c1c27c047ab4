"""Reading one picture for `archspec maps` and `archspec pool`: PNG/JPEG through PIL, or a
NumPy `.npy` array."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from archspec.viz import VizError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def is_array_file(path) -> bool:
    return Path(path).suffix.lower() == ".npy"


def read_npy(path) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise VizError(f"cannot read {path} as a NumPy array: {exc}",
                       "save it with numpy.save(path, array)", code=2) from None
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise VizError(f"{path} holds {a.dtype} values, not numbers", code=2)
    return a.astype(np.float32)


def open_image(path, channels: int | None = None, size: tuple[int, int] | None = None):
    """A PIL image, converted to grey (1 channel) or RGB (3) and resized to (h, w) if asked."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
    except (OSError, UnidentifiedImageError) as exc:
        raise VizError(f"cannot read {path} as an image: {exc}",
                       "pass a PNG or JPEG file, or a .npy array", code=2) from None
    if channels == 1:
        img = img.convert("L")
    elif channels == 3 or channels is None and img.mode not in ("L", "I;16", "I", "F"):
        img = img.convert("RGB")
    else:
        img = img.convert("L")
    if size is not None and img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return img


def image_array(path, channels: int | None = None, size: tuple[int, int] | None = None):
    """(H, W, C) float32 in [0, 1]."""
    a = np.asarray(open_image(path, channels, size), dtype=np.float32) / 255.0
    return a[..., None] if a.ndim == 2 else a


def to_unit_range(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(a)), float(np.max(a))
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
