"""A streamed image folder (decoded when a batch needs each image) that is hostile or that
changes under a run: nothing hangs, nothing is a traceback, every error names the file."""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from helpers import time_limit

from archspec.data import DataConfig, DataError, batches, load_dataset


def folder(root, n=12, size=(16, 16), mode="L", ext="png"):
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"c{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        shape = size if mode == "L" else (*size, 3)
        Image.fromarray(rng.uniform(0, 255, shape).astype(np.uint8)).save(d / f"{i}.{ext}")
    return root


def load(root, in_memory=False, shape=(16, 16, 1), **kw):
    cfg = DataConfig(name="image_folder", path=str(root), options={"in_memory": in_memory},
                     normalize="none", val_fraction=0.25, test_fraction=0.25, **kw)
    with time_limit(30):
        return load_dataset(cfg, shape, seed=1)


def every_batch(ds):
    with time_limit(30):
        for split in (ds.train, ds.val, ds.test):
            for x, _ in batches(split, 4, shuffle=False, seed=0, epoch=0):
                assert x.shape[1:] == (16, 16, 1)


def big_png(path, width, height):
    """A valid PNG header declaring width x height pixels (the pixels need not follow)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_a_fifo_in_a_streamed_folder_is_refused_not_waited_on(tmp_path):
    root = folder(tmp_path / "imgs")
    os.mkfifo(root / "c1" / "99.png")
    with pytest.raises(DataError) as info:
        load(root)
    assert info.value.file == str(root / "c1" / "99.png")
    assert "not a regular file (a FIFO)" in info.value.message


def test_a_fifo_swapped_in_after_indexing_is_refused_when_its_batch_is_read(tmp_path):
    root = folder(tmp_path / "imgs")
    ds = load(root)
    victim = root / "c0" / "4.png"
    victim.unlink()
    os.mkfifo(victim)
    with pytest.raises(DataError) as info:
        every_batch(ds)
    assert info.value.file == str(victim) and "a FIFO" in info.value.message


def test_a_grey_image_swapped_for_rgb_after_indexing_names_the_file(tmp_path):
    root = folder(tmp_path / "imgs")
    ds = load(root)
    victim = root / "c1" / "5.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(victim)
    with pytest.raises(DataError) as info:
        every_batch(ds)
    err = info.value
    assert err.file == str(victim)
    assert "changed" in err.message and "3 channels" in err.message and "1" in err.message


def test_an_image_resized_after_indexing_names_the_file(tmp_path):
    root = folder(tmp_path / "imgs")
    ds = load(root, resize=False)
    victim = root / "c0" / "2.png"
    Image.fromarray(np.zeros((20, 16), np.uint8)).save(victim)
    with pytest.raises(DataError) as info:
        every_batch(ds)
    assert info.value.file == str(victim) and "image is 20x16" in info.value.message


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_png_declaring_ten_billion_pixels_is_refused_in_both_modes(tmp_path, in_memory):
    root = folder(tmp_path / "imgs")
    bomb = big_png(root / "c0" / "bomb.png", 100_000, 100_000)
    with pytest.raises(DataError) as info:
        load(root, in_memory=in_memory)
    assert info.value.file == str(bomb)
    assert "declares 10,000,000,000 pixels" in info.value.message


def test_a_png_turned_into_a_bomb_after_indexing_is_refused(tmp_path):
    root = folder(tmp_path / "imgs")
    ds = load(root)
    big_png(root / "c1" / "7.png", 100_000, 100_000)
    with pytest.raises(DataError) as info:
        every_batch(ds)
    assert info.value.file == str(root / "c1" / "7.png")


def test_a_jpeg_truncated_after_indexing_names_the_file(tmp_path):
    root = folder(tmp_path / "imgs", ext="jpg")
    ds = load(root)
    victim = root / "c0" / "6.jpg"
    victim.write_bytes(victim.read_bytes()[:300])
    with pytest.raises(DataError) as info:
        every_batch(ds)
    assert info.value.file == str(victim) and "truncated" in info.value.message.lower()
