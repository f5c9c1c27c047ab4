"""The IDX format of MNIST and its family (Fashion-MNIST, KMNIST, EMNIST).

An IDX file is: two zero bytes, a dtype code byte, a byte giving the number of
dimensions, one big-endian uint32 per dimension, then the values, big-endian, row
major. Files may be gzip-compressed (detected from the content, not the name).
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from pydantic import Field

from ..dataset import Raw
from ..errors import DataError
from ..files import open_file, require_file
from ..labels import check_class_ids
from ..options import SourceOptions
from ..values import check_values

# Deflate cannot inflate data by more than about 1032:1, so a gzip file of n bytes holds
# at most this many times n: a header declaring more is refused without inflating.
GZIP_MAX_RATIO = 1032
DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class Options(SourceOptions):
    labels: str | None = Field(None, description="labels IDX file (one id per image)")
    test_images: str | None = Field(None, description="optional pre-made test images")
    test_labels: str | None = Field(None, description="labels for test_images")
    num_classes: int | None = Field(None, ge=1, description="default: largest label + 1")


def load(cfg, options: Options, input_shape, seed) -> Raw:
    images = require_file(cfg.path, "IDX images file")
    x, y = _pair(images, options.labels, "labels", options.num_classes)
    test = None
    if (options.test_images is None) != (options.test_labels is None):
        raise DataError("give both `test_images` and `test_labels`, or neither",
                        option="test_images" if options.test_images is None else "test_labels")
    if options.test_images is not None:
        test_images = _beside(options.test_images, images, "test_images")
        test = _pair(test_images, options.test_labels, "test_labels", options.num_classes)
        if test[0].shape[1:] != x.shape[1:]:
            raise DataError(f"test images are {test[0].shape[1:]}, train images "
                            f"{x.shape[1:]}", file=str(test_images))
    n = max(int(y.max(initial=-1)) + 1, int(test[1].max(initial=-1)) + 1 if test else 0)
    n = options.num_classes or n
    return Raw(x, y, "classification", n, [str(i) for i in range(n)], str(images),
               image=x.ndim == 4, test=test)


def _pair(images: Path, labels: str | None, option: str, num_classes: int | None):
    if labels is None:
        raise DataError(f"IDX images need a labels file: set option `{option}`",
                        file=str(images), hint=_labels_hint(images), option=option)
    labels_path = _beside(labels, images, option)
    x = as_images(read_idx(images), images)
    check_values(x, str(images), "the image")
    raw_y = read_idx(labels_path)
    if raw_y.ndim != 1:
        raise DataError(f"a labels file holds one value per record, found shape "
                        f"{raw_y.shape}", file=str(labels_path))
    if len(raw_y) != len(x):
        raise DataError(f"{len(raw_y)} labels for {len(x)} images in {images}",
                        file=str(labels_path), hint="the two files must come as a pair")
    y, _ = check_class_ids(raw_y, num_classes, str(labels_path))
    return x, y


def _beside(path: str, images: Path, option: str) -> Path:
    # A relative labels path is tried as given, then next to the images file, since
    # IDX pairs usually sit in one folder.
    p = Path(path).expanduser()
    if not p.exists() and not p.is_absolute() and (images.parent / p).exists():
        p = images.parent / p
    return require_file(p, f"IDX file for `{option}`", option=option)


def _labels_hint(images: Path) -> str | None:
    near = sorted(p.name for p in images.parent.iterdir() if "label" in p.name.lower())
    return f"files here that look like labels: {', '.join(near)}" if near else None


def as_images(a: np.ndarray, file: Path) -> np.ndarray:
    """(N, H, W) -> (N, H, W, 1); (N, H, W, C) stays; (N, F) stays tabular."""
    if a.ndim == 3:
        return a[..., None]
    if a.ndim in (2, 4):
        return a
    raise DataError(f"an images file needs 2 to 4 dimensions (records first), found "
                    f"{a.ndim}: {a.shape}", file=str(file))


def read_idx(path: Path) -> np.ndarray:
    """The array in an IDX file. The header's sizes are checked against what the file can
    hold before the data is read, so a damaged header never allocates more than that."""
    try:
        with open_file(path, "IDX file") as raw:
            size = os.fstat(raw.fileno()).st_size
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            dtype, dims, offset = _header(f, path)
            record = math.prod(dims[1:]) * dtype.itemsize  # Python ints: no overflow
            expected = dims[0] * record
            _check_declared(dims, record, expected, size, offset, compressed, path)
            data = f.read(expected)
            extra = (size - offset - len(data)) if not compressed else _count_rest(f)
    except (OSError, EOFError, zlib.error) as exc:
        what = "broken gzip data" if compressed else "cannot read"
        raise DataError(f"{what}: {exc}", file=str(path)) from None
    if len(data) < expected:
        whole = len(data) // record
        raise DataError(f"truncated: the header promises {dims[0]} records of {record} "
                        f"bytes, but the file ends inside record {whole}", file=str(path),
                        record=f"index {whole}", hint="the download was cut short?")
    if extra:
        raise DataError(f"{extra} bytes after the last of {dims[0]} records",
                        file=str(path), hint="the header's sizes do not match the data")
    a = np.frombuffer(data, dtype=dtype)
    return a.reshape(dims).astype(dtype.newbyteorder("="))


def _check_declared(dims, record: int, expected: int, size: int, offset: int,
                    compressed: bool, path: Path) -> None:
    if 0 in dims:
        raise DataError(f"the header declares a dimension of 0: {dims}", file=str(path),
                        hint="every record needs at least one value; the header is damaged "
                        "or the file was not written as IDX")
    declared = f"the header declares {dims[0]} records of {record} bytes {dims}"
    if compressed and offset + expected > size * GZIP_MAX_RATIO + 1024:
        raise DataError(f"{declared}, more than the compressed file can hold ({size} bytes "
                        f"inflate to at most about {size * GZIP_MAX_RATIO})",
                        file=str(path), hint="the header is damaged, or this is not an IDX "
                        "file")
    if not compressed and record > size - offset:
        raise DataError(f"{declared}, more than the file holds ({size - offset} bytes after "
                        "the header)", file=str(path), hint="the header is damaged, or this is "
                        "not an IDX file")


def _count_rest(f) -> int:
    n = 0
    while chunk := f.read(1 << 20):  # bounded: the gzip ratio caps the total
        n += len(chunk)
    return n


def _header(f, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\0\0":
        raise DataError(f"not an IDX file: it starts with {head.hex(' ') or 'nothing'}, "
                        "not 00 00 <type> <dims>", file=str(path),
                        hint="IDX files start with two zero bytes (MNIST's magic numbers "
                        "are 2049 for labels and 2051 for images)")
    code, ndim = head[2], head[3]
    if code not in DTYPES:
        raise DataError(f"unknown IDX type code 0x{code:02x}", file=str(path),
                        hint="known codes: " + ", ".join(f"0x{c:02x}" for c in DTYPES))
    sizes = f.read(4 * ndim) if ndim else b""
    if ndim == 0 or len(sizes) < 4 * ndim:
        raise DataError(f"truncated IDX header: {ndim} dimensions declared", file=str(path))
    dims = struct.unpack(f">{ndim}I", sizes)
    return np.dtype(DTYPES[code]), dims, 4 + 4 * ndim
