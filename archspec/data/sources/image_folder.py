"""A folder with one subfolder of images per class (PNG, JPEG, ... via PIL).

Class ids follow the sorted subfolder names. Images are brought to one size while
reading (they cannot be stacked otherwise): the architecture's H x W, or the first
image's size when no input shape is given.

Pixel values are in 8-bit units, 0..255, whatever the file's depth: 16-bit images are
divided by 257 (65535 / 255), so 8- and 16-bit files mix in one folder. Images of 32-bit
integer or float pixels have no such full scale; they are read as they are, and may not
be mixed with other kinds.

A folder whose decoded images would take more than data.lazy.MEMORY_BUDGET is not decoded
up front: it is indexed (path, label), every image header is checked, and each image is
decoded when a batch needs it (option `in_memory` forces either way).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from ..cache import cached_arrays, listing
from ..dataset import Raw
from ..errors import DataError
from ..files import require_folder
from ..images import image_header, is_sixteen_bit, open_image
from ..lazy import MEMORY_BUDGET, LazyExamples, decoded_bytes
from ..options import SourceOptions
from ..passes import tracked
from ..seeding import rng_for
from ..shaping import RESIZE_HINT
from ..values import check_values


class Options(SourceOptions):
    extensions: list[str] = Field([".png", ".jpg", ".jpeg"],
                                  description="file endings read as images (any case)")
    mode: Literal["L", "RGB", "RGBA"] | None = Field(
        None, description="convert every image to this PIL mode; default: keep each "
        "image's own, and require all to have the same channel count")
    in_memory: bool | None = Field(
        None, description="decode every image before training (true) or each when a batch "
        f"needs it (false); default: in memory unless that takes over {MEMORY_BUDGET >> 30} GiB")


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
    y = np.array([k for _, k in files], dtype=np.int32)
    if _lazy(options, files, size):
        x = _index(files, size, options, cfg.resize)
    else:
        x = _decode_all(files, size, options, cfg.resize)
    return Raw(x, y, "classification", len(classes), classes, str(root), image=True)


def _lazy(options: Options, files, size) -> bool:
    if options.in_memory is not None:
        return not options.in_memory
    if size is None:
        size = open_image(files[0][0]).size
    channels = 4  # the most a mode gives: an upper bound before any image is opened
    return decoded_bytes(len(files), (size[1], size[0], channels)) > MEMORY_BUDGET


def _decode_all(files, size, options: Options, resize: bool) -> np.ndarray:
    pixels, first = [], None
    for path, _ in files:
        a, units = _decode(path, size, options.mode, resize)
        size = size or (a.shape[1], a.shape[0])  # no input shape: the first image's size
        first = first or (path, a.shape[-1], units)
        _same_kind(path, a.shape[-1], units, first)
        pixels.append(a)
    return np.stack(pixels)


def _index(files, size, options: Options, resize: bool) -> LazyExamples:
    """Check every header (size bound, channels, kind) without decoding any pixel. A folder
    that passed is remembered in the data cache by its listing (names, sizes, modification
    times), so a re-run, resume or sweep point over it opens no header again."""
    key = listing(p for p, _ in files)
    check = partial(_check_headers, files, size, options.mode, resize)
    found = (cached_arrays("image-headers", {"listing": key, "size": size, "mode": options.mode,
                                             "resize": resize}, check) if key else check())
    size, channels, units = tuple(int(v) for v in found["size"]), int(found["channels"]), \
        str(found["units"])
    return LazyExamples([str(p) for p, _ in files],
                        partial(decode, size=size, mode=options.mode, resize=resize,
                                kind=(channels, units)),
                        (size[1], size[0], channels),
                        dtype=np.dtype(np.float32 if units in (SIXTEEN, "F") else
                                       np.int32 if units == "I" else np.uint8))


def _check_headers(files, size, mode, resize: bool) -> dict:
    """(W, H), channels and units of every image, all alike; else a DataError."""
    first = None
    for path, _ in tracked(files, "checking image headers", len(files)):
        channels, units, wh = _peek(path, mode)
        size = size or wh
        first = first or (path, channels, units)
        _same_kind(path, channels, units, first)
        if wh != size and not resize:
            _fit_size(wh, size, resize, path)
    return {"size": np.array(size), "channels": np.array(first[1]), "units": np.array(first[2])}


def decode(path, size, mode, resize, kind=None) -> np.ndarray:
    """One image as (H, W, C) pixels at `size` (W, H), or its own size when None. `kind`:
    the (channels, units) the folder had when it was indexed; a file replaced since by
    one of another kind is named, not left to fail a batch's stacking."""
    a, units = _decode(path, size, mode, resize)
    if kind is not None and (a.shape[-1], _kind(units)) != (kind[0], _kind(kind[1])):
        raise DataError(
            f"image changed since the folder was read: it has {a.shape[-1]} channels of "
            f"{_kind(units)} pixels now, {kind[0]} of {_kind(kind[1])} pixels then",
            file=str(path), hint="a folder must not change while a run reads it; restore "
            "the file, or start the run again to read the folder as it is now")
    return a


def _decode(path, size, mode, resize) -> tuple[np.ndarray, str]:
    img, units = _read(Path(path), mode)
    a = np.asarray(_fit(img, size or img.size, resize, Path(path)))
    if units == SIXTEEN:
        a = a.astype(np.float32) / np.float32(257)  # 0..65535 -> 0..255
    a = a[..., None] if a.ndim == 2 else a
    check_values(a[None], str(path), "the image", record=lambda i: None)  # float NaN
    return a, units


def _same_kind(path, channels: int, units: str, first) -> None:
    if channels != first[1]:
        raise DataError(f"image has {channels} channels, but {first[0]} has "
                        f"{first[1]}", file=str(path), hint=(
                            "convert the images to one kind, or set option "
                            "`mode: RGB` (or L) to convert while reading"))
    if _kind(units) != _kind(first[2]):
        raise DataError(f"image has {_kind(units)} pixels, but {first[0]} has "
                        f"{_kind(first[2])} pixels", file=str(path), hint=(
                            "their values have no common scale: convert the images to "
                            "one kind (8- and 16-bit images mix: both are read as "
                            "0..255)"))


_BANDS = {"1": 1, "L": 1, "P": 3, "LA": 2, "RGB": 3, "RGBA": 4, "I": 1, "F": 1}


def _peek(path: Path, mode: str | None) -> tuple[int, str, tuple[int, int]]:
    """(channels, units, (W, H)) from the header alone, as `_read` would give them."""
    with image_header(path) as img:
        m, wh, info = img.mode, img.size, dict(img.info)
    if mode:
        return len(mode), EIGHT, wh
    if m in ("I;16", "I;16L", "I;16B", "I;16N"):
        return 1, SIXTEEN, wh
    if m == "P":
        return (4 if "transparency" in info else 3), EIGHT, wh
    return _BANDS.get(m, 3), (m if m in _KINDS else EIGHT), wh


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
    _fit_size(img.size, size, resize, path)
    return img.resize(size, Image.Resampling.BILINEAR)


def _fit_size(have: tuple[int, int], size: tuple[int, int], resize: bool, path: Path) -> None:
    if have != size and not resize:
        raise DataError(f"image is {have[1]}x{have[0]} (HxW), expected "
                        f"{size[1]}x{size[0]}", file=str(path), hint=RESIZE_HINT)
