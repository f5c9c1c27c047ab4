"""A folder with one subfolder of images per class (PNG, JPEG, ... via PIL).

Class ids follow the sorted subfolder names. Images are brought to one size while
reading (they cannot be stacked otherwise): the architecture's H x W, or the first
image's size when no input shape is given.

Pixel values are in 8-bit units, 0..255, whatever the file's depth: 16-bit images are
divided by 257 (65535 / 255), so 8- and 16-bit files mix in one folder. Images of 32-bit
integer or float pixels have no such full scale; they are read as they are, and may not
be mixed with other kinds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from ..dataset import Raw
from ..errors import DataError
from ..files import require_folder
from ..images import is_sixteen_bit, open_image
from ..options import SourceOptions
from ..seeding import rng_for
from ..shaping import RESIZE_HINT
from ..values import check_values


class Options(SourceOptions):
    extensions: list[str] = Field([".png", ".jpg", ".jpeg"],
                                  description="file endings read as images (any case)")
    mode: Literal["L", "RGB", "RGBA"] | None = Field(
        None, description="convert every image to this PIL mode; default: keep each "
        "image's own, and require all to have the same channel count")


def load(cfg, options: Options, input_shape, seed) -> Raw:
    root = require_folder(cfg.path, "image folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError("no class subfolders", file=str(root),
                        hint="put each class's images in its own subfolder: root/cat/1.png")
    files = [(f, k) for k, name in enumerate(classes) for f in _images(root / name, options)]
    if cfg.limit is not None and len(files) > cfg.limit:
        # Read only the images that will be used; the loader's own limit then keeps all.
        keep = rng_for(seed, "image_folder").choice(len(files), cfg.limit, replace=False)
        files = [files[i] for i in sorted(keep)]
    size = _target_size(input_shape)
    pixels, first = [], None
    for path, _ in files:
        img, units = _read(path, options.mode)
        size = size or img.size  # no input shape: the first image sets the size
        a = np.asarray(_fit(img, size, cfg.resize, path))
        if units == SIXTEEN:
            a = a.astype(np.float32) / np.float32(257)  # 0..65535 -> 0..255
        a = a[..., None] if a.ndim == 2 else a
        first = first or (path, a.shape[-1], units)
        if a.shape[-1] != first[1]:
            raise DataError(f"image has {a.shape[-1]} channels, but {first[0]} has "
                            f"{first[1]}", file=str(path), hint=(
                                "convert the images to one kind, or set option "
                                "`mode: RGB` (or L) to convert while reading"))
        if _kind(units) != _kind(first[2]):
            raise DataError(f"image has {_kind(units)} pixels, but {first[0]} has "
                            f"{_kind(first[2])} pixels", file=str(path), hint=(
                                "their values have no common scale: convert the images to "
                                "one kind (8- and 16-bit images mix: both are read as "
                                "0..255)"))
        check_values(a[None], str(path), "the image", record=lambda i: None)  # float NaN
        pixels.append(a)
    x = np.stack(pixels)
    y = np.array([k for _, k in files], dtype=np.int32)
    return Raw(x, y, "classification", len(classes), classes, str(root), image=True)


def _images(folder: Path, options: Options) -> list[Path]:
    endings = tuple(e.lower() if e.startswith(".") else f".{e.lower()}"
                    for e in options.extensions)
    # Anything with an image ending but a folder is read, so a FIFO or device named
    # like an image is refused by name rather than skipped (or waited on).
    found = sorted(p for p in folder.iterdir() if not p.is_dir() and p.suffix.lower() in endings)
    if not found:
        raise DataError(f"class folder '{folder.name}' has no images ({', '.join(endings)})",
                        file=str(folder), hint="remove the folder, add images, or set "
                        "option `extensions`")
    return found


def _target_size(input_shape) -> tuple[int, int] | None:
    if input_shape is not None and len(input_shape) in (2, 3):
        return (int(input_shape[1]), int(input_shape[0]))  # PIL sizes are (W, H)
    return None


EIGHT, SIXTEEN = "8-bit", "16-bit"
_KINDS = {"I": "32-bit integer", "F": "32-bit float"}


def _read(path: Path, mode: str | None):
    """(image, its units): EIGHT, SIXTEEN (still to be divided by 257), or a raw mode."""
    img = open_image(path)
    if is_sixteen_bit(img):
        if not mode:
            return img.convert("I"), SIXTEEN  # int32 keeps all 16 bits for the division
        img = _to_eight_bit(img)  # PIL would clip 16-bit values to 255 when converting
    if mode:
        return img.convert(mode), EIGHT
    img = _plain(img)
    return img, (img.mode if img.mode in _KINDS else EIGHT)


def _kind(units: str) -> str:
    return _KINDS.get(units, "8-bit or 16-bit")


def _to_eight_bit(img):
    from PIL import Image

    a = np.asarray(img, dtype=np.float32) / np.float32(257)
    return Image.fromarray(np.round(a).astype(np.uint8))


def _plain(img):
    # Modes NumPy cannot show as channels become their nearest plain mode.
    if img.mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode == "1":
        return img.convert("L")
    return img if img.mode in ("L", "LA", "RGB", "RGBA", "I", "F") else img.convert("RGB")


def _fit(img, size: tuple[int, int], resize: bool, path: Path):
    from PIL import Image

    if img.size == size:
        return img
    if not resize:
        raise DataError(f"image is {img.size[1]}x{img.size[0]} (HxW), expected "
                        f"{size[1]}x{size[0]}", file=str(path), hint=RESIZE_HINT)
    return img.resize(size, Image.Resampling.BILINEAR)
