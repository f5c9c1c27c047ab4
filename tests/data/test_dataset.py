"""The data package, tested like a user would use it, against independent references:
scikit-learn's own arrays, NumPy statistics, and files written here by small writers
that follow each format's published layout."""
from __future__ import annotations

import contextlib
import csv
import gzip
import pickle
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import ValidationError

from archspec.data import (
    DataConfig,
    DataError,
    Split,
    apply_normalization,
    batches,
    load_dataset,
    prefetch,
    steps_per_epoch,
)


def cfg(name, path=None, **kw):
    return DataConfig(name=name, path=None if path is None else str(path), **kw)


def all_splits(ds):
    return [ds.train, ds.val, ds.test]


def rows_sorted(x):
    """Examples as a sorted array of flat rows: compares sets of examples, any order."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return flat[np.lexsort(flat.T[::-1])]


def pairs(x, y):
    """Sorted (example, label) rows: compares labelled examples in any order."""
    return rows_sorted(np.concatenate([np.reshape(x, (len(x), -1)), np.reshape(y, (-1, 1))], 1))


def union_x(ds):
    return np.concatenate([s.x for s in all_splits(ds)])


def union_y(ds):
    return np.concatenate([s.y for s in all_splits(ds)])


@contextlib.contextmanager
def raises_data_error(match_file=None, match=None):
    """Expect a DataError whose text names `match_file` (and contains `match`)."""
    with pytest.raises(DataError) as info:
        yield info
    text = str(info.value)
    if match_file is not None:
        assert str(match_file) in text and info.value.file is not None, text
    if match is not None:
        assert match in text, text


# --- writers for the user formats (from the formats' published layouts) -------------

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int32): 0x0C,
             np.dtype(np.float32): 0x0D}


def write_idx(path, array, compress=False):
    a = np.asarray(array)
    code = IDX_CODES[a.dtype]
    header = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    body = header + a.astype(a.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


def cifar_rows(images):
    """(N, 32, 32, 3) -> (N, 3072) rows: all red, then green, then blue, row-major."""
    return np.stack([np.concatenate([img[:, :, c].ravel() for c in range(3)])
                     for img in images]).astype(np.uint8)


def write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def random_images(rng, n, h=32, w=32, c=3):
    return rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)


# --- built-in sets ---------------------------------------------------------------------

def test_digits_matches_sklearn():
    from sklearn.datasets import load_digits
    ref = load_digits()
    ds = load_dataset(cfg("digits", normalize="none"), (8, 8, 1))
    assert sum(len(s) for s in all_splits(ds)) == len(ref.target) == 1797
    assert ds.num_classes == 10 and ds.task == "classification"
    assert ds.input_shape == (8, 8, 1)
    for s in all_splits(ds):
        assert s.x.dtype == np.float32 and s.y.dtype == np.int32 and s.x.shape[1:] == (8, 8, 1)
    np.testing.assert_array_equal(rows_sorted(union_x(ds)), rows_sorted(ref.images))
    np.testing.assert_array_equal(np.sort(union_y(ds)), np.sort(ref.target))


def test_digits_flatten_for_mlp_and_natural_shape():
    from sklearn.datasets import load_digits
    flat = load_dataset(cfg("digits", normalize="none"), (64,))
    assert flat.input_shape == (64,)
    np.testing.assert_array_equal(rows_sorted(union_x(flat)), rows_sorted(load_digits().data))
    assert load_dataset(cfg("digits")).input_shape == (8, 8, 1)


def test_digits_resized_to_colour_input():
    ds = load_dataset(cfg("digits", normalize="none", limit=60), (16, 16, 3))
    x = ds.train.x
    assert x.shape[1:] == (16, 16, 3)
    np.testing.assert_array_equal(x[..., 0], x[..., 1])  # grey repeated into R, G, B
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    assert 0 <= x.min() and x.max() <= 16.0001


def test_shape_mismatch_without_resize_is_an_error():
    with raises_data_error(match="(8, 8, 1)") as info:
        load_dataset(cfg("digits", resize=False), (16, 16, 1))
    assert "(16, 16, 1)" in str(info.value) and "resize" in str(info.value)
    with raises_data_error(match="channels"):
        load_dataset(cfg("digits", limit=20), (8, 8, 4))  # only grey -> colour is made


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "iris"])
def test_tabular_sets_match_sklearn(name):
    import sklearn.datasets as skd
    ref = getattr(skd, f"load_{name}")()
    ds = load_dataset(cfg(name, normalize="none"))
    assert ds.input_shape == (ref.data.shape[1],)
    assert ds.class_names == list(ref.target_names)
    np.testing.assert_allclose(rows_sorted(union_x(ds)),
                               rows_sorted(ref.data.astype(np.float32)))
    np.testing.assert_array_equal(np.sort(union_y(ds)), np.sort(ref.target))


def test_shapes_deterministic_classes_and_shape():
    a = load_dataset(cfg("shapes", options={"n": 200, "classes": 6}), (24, 20, 1), seed=3)
    b = load_dataset(cfg("shapes", options={"n": 200, "classes": 6}), (24, 20, 1), seed=3)
    c = load_dataset(cfg("shapes", options={"n": 200, "classes": 6}), (24, 20, 1), seed=4)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.train.x, c.train.x)
    assert a.input_shape == (24, 20, 1) and a.num_classes == 6 and len(a.class_names) == 6
    assert np.bincount(union_y(a)).tolist() == [34, 34, 33, 33, 33, 33]  # balanced
    raw = load_dataset(cfg("shapes", normalize="none", options={"n": 50}))
    assert raw.input_shape == (32, 32, 3)
    assert 0 <= union_x(raw).min() and union_x(raw).max() <= 1


def test_shapes_fast_at_224():
    from archspec.data.sources.shapes import generate
    start = time.process_time()  # CPU time: other jobs on the machine do not count
    x, y = generate(512, 4, (224, 224, 3), seed=0)
    assert time.process_time() - start < 20.0
    assert x.shape == (512, 224, 224, 3) and x.dtype == np.float32 and y.shape == (512,)


def test_function_targets_are_the_function_of_the_input_sum():
    ds = load_dataset(cfg("function", normalize="none",
                          options={"target": "sinc", "n": 300, "low": -5, "high": 5}), (2,))
    for s in all_splits(ds):
        total = s.x.astype(np.float64).sum(axis=1)
        expected = np.where(total == 0, 1.0, np.sin(total) / np.where(total == 0, 1, total))
        np.testing.assert_allclose(s.y[:, 0], expected, atol=1e-5)
        assert s.y.shape == (len(s.x), 1) and ds.task == "regression"
        assert s.x.min() >= -5 and s.x.max() <= 5
    assert ds.num_classes is None and ds.input_shape == (2,)


def test_regression_targets_are_not_normalised():
    opts = {"target": "square", "n": 200}
    raw = load_dataset(cfg("function", normalize="none", options=opts), (1,))
    std = load_dataset(cfg("function", options=opts), (1,))
    np.testing.assert_array_equal(raw.train.y, std.train.y)
    np.testing.assert_allclose(std.train.y[:, 0], raw.train.x[:, 0] ** 2, rtol=1e-5)


# --- splits, limits and normalisation -----------------------------------------------

def id_npz(tmp_path, n=100, features=3):
    """Examples whose first feature is their own id, so splits can be traced."""
    x = np.random.default_rng(0).normal(size=(n, features)).astype(np.float32)
    x[:, 0] = np.arange(n)
    path = tmp_path / "ids.npz"
    np.savez(path, x=x, y=np.arange(n) % 3)
    return path, x


def test_splits_partition_the_examples(tmp_path):
    path, _ = id_npz(tmp_path)
    ds = load_dataset(cfg("npz", path, normalize="none", val_fraction=0.15,
                          test_fraction=0.25), seed=7)
    ids = [s.x[:, 0].astype(int) for s in all_splits(ds)]
    assert [len(i) for i in ids] == [60, 15, 25]
    assert sorted(np.concatenate(ids).tolist()) == list(range(100))  # disjoint, complete
    again = load_dataset(cfg("npz", path, normalize="none", val_fraction=0.15,
                             test_fraction=0.25), seed=7)
    np.testing.assert_array_equal(again.test.x, ds.test.x)
    other = load_dataset(cfg("npz", path, normalize="none", val_fraction=0.15,
                             test_fraction=0.25), seed=8)
    assert set(other.test.x[:, 0]) != set(ds.test.x[:, 0])


def test_limit_caps_the_examples():
    ds = load_dataset(cfg("digits", limit=100))
    assert sum(len(s) for s in all_splits(ds)) == 100


def test_standard_stats_come_from_train_only(tmp_path):
    path, _ = id_npz(tmp_path, n=200)
    raw = load_dataset(cfg("npz", path, normalize="none"), seed=1)
    ds = load_dataset(cfg("npz", path), seed=1)
    mean, std = raw.train.x.mean(axis=0), raw.train.x.std(axis=0)
    np.testing.assert_allclose(ds.norm_stats["mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(ds.norm_stats["std"], std, rtol=1e-5)
    everything = union_x(raw)
    assert not np.allclose(ds.norm_stats["mean"], everything.mean(axis=0), rtol=1e-3)
    for split, raw_split in zip(all_splits(ds), all_splits(raw)):
        np.testing.assert_allclose(split.x, (raw_split.x - mean) / std, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ds.train.x.mean(axis=0), 0, atol=1e-5)
    assert abs(ds.val.x.mean(axis=0)).max() > 1e-3  # val is not re-centred on itself
    # the same stats turn raw inputs into model inputs at prediction time
    np.testing.assert_allclose(apply_normalization(raw.test.x, ds.norm_stats), ds.test.x,
                               rtol=1e-6)


def test_image_stats_are_per_channel():
    raw = load_dataset(cfg("shapes", normalize="none", options={"n": 120}), (8, 8, 3))
    ds = load_dataset(cfg("shapes", options={"n": 120}), (8, 8, 3))
    per_channel = raw.train.x.reshape(-1, 3)
    np.testing.assert_allclose(ds.norm_stats["mean"], per_channel.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(ds.norm_stats["std"], per_channel.std(axis=0), rtol=1e-5)


def test_minmax_and_constant_features(tmp_path):
    x = np.random.default_rng(0).uniform(2, 5, (50, 2)).astype(np.float32)
    x[:, 1] = 7.0  # constant: must not be divided by ~0
    np.savez(tmp_path / "c.npz", x=x, y=np.arange(50) % 2)
    raw = load_dataset(cfg("npz", tmp_path / "c.npz", normalize="none"))
    mm = load_dataset(cfg("npz", tmp_path / "c.npz", normalize="minmax"))
    lo, hi = raw.train.x.min(axis=0), raw.train.x.max(axis=0)
    assert mm.norm_stats["min"] == pytest.approx(lo.tolist())
    assert mm.norm_stats["max"] == pytest.approx(hi.tolist())
    assert mm.train.x[:, 0].min() == pytest.approx(0) and mm.train.x[:, 0].max() == pytest.approx(1)
    std = load_dataset(cfg("npz", tmp_path / "c.npz"))
    assert np.isfinite(std.test.x).all() and np.abs(std.train.x[:, 1]).max() < 1e-6


def test_tokens_are_never_normalised(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 500, (40, 12)).astype(np.int32)
    np.savez(tmp_path / "t.npz", x=tokens, y=np.arange(40) % 2)
    ds = load_dataset(cfg("npz", tmp_path / "t.npz", normalize="standard"))
    assert ds.norm_stats == {"kind": "none"} and ds.train.x.dtype == np.int32
    np.testing.assert_array_equal(rows_sorted(union_x(ds)), rows_sorted(tokens))


def test_empty_split_names_the_fraction(tmp_path):
    path, _ = id_npz(tmp_path, n=20)
    with raises_data_error(match_file=path, match="val_fraction") as info:
        load_dataset(cfg("npz", path, val_fraction=0.01))
    assert "20 examples" in str(info.value)
    with raises_data_error(match="test_fraction"):
        load_dataset(cfg("npz", path, test_fraction=0.0))


# --- batches and prefetch ------------------------------------------------------------

def test_batches_cover_each_example_once_and_are_reproducible():
    split = Split(np.arange(103, dtype=np.float32)[:, None], np.arange(103, dtype=np.int32))
    got = list(batches(split, 10, shuffle=True, seed=5, epoch=0))
    assert len(got) == steps_per_epoch(103, 10, False) == 11 and len(got[-1][0]) == 3
    seen = np.concatenate([y for _, y in got])
    assert sorted(seen.tolist()) == list(range(103))
    assert all(np.array_equal(x[:, 0], y) for x, y in got)  # x and y stay paired
    same = np.concatenate([y for _, y in batches(split, 10, shuffle=True, seed=5, epoch=0)])
    next_epoch = np.concatenate([y for _, y in batches(split, 10, shuffle=True, seed=5, epoch=1)])
    np.testing.assert_array_equal(seen, same)
    assert not np.array_equal(seen, next_epoch)
    plain = np.concatenate([y for _, y in batches(split, 10, shuffle=False, seed=5, epoch=0)])
    np.testing.assert_array_equal(plain, np.arange(103))
    dropped = list(batches(split, 10, shuffle=True, seed=5, epoch=0, drop_last=True))
    assert len(dropped) == steps_per_epoch(103, 10, True) == 10
    assert all(len(y) == 10 for _, y in dropped)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), size=st.integers(1, 70), epoch=st.integers(0, 5))
def test_batches_partition_any_size(n, size, epoch):
    split = Split(np.zeros((n, 1), np.float32), np.arange(n, dtype=np.int32))
    got = [y for _, y in batches(split, size, shuffle=True, seed=0, epoch=epoch)]
    assert len(got) == steps_per_epoch(n, size, False)
    assert sorted(np.concatenate(got).tolist()) == list(range(n))


def test_prefetch_yields_the_same_items_and_applies_put():
    items = [(np.full(3, i), i) for i in range(20)]
    got = list(prefetch(iter(items), size=3, put=lambda b: (b[0] * 2, b[1])))
    assert [g[1] for g in got] == list(range(20))
    assert all(np.array_equal(g[0], np.full(3, 2 * i)) for i, g in enumerate(got))
    assert list(prefetch(iter(range(5)), size=0)) == list(range(5))


def test_prefetch_reraises_producer_errors():
    def source():
        yield 1
        yield 2
        raise RuntimeError("disk went away")

    got = []
    with pytest.raises(RuntimeError, match="disk went away"):
        for item in prefetch(source()):
            got.append(item)
    assert got == [1, 2]


def test_prefetch_stops_when_the_consumer_stops():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    it = prefetch(endless(), size=2)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    it.close()
    deadline = time.time() + 2
    while any(t.name == "archspec-prefetch" for t in threading.enumerate()):
        assert time.time() < deadline, "prefetch thread still running"
        time.sleep(0.01)


# --- IDX -----------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
def test_idx_reads_back(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, 30).astype(np.uint8)
    write_idx(tmp_path / "img.idx", images, compress)
    write_idx(tmp_path / "lab.idx", labels, compress)
    ds = load_dataset(cfg("idx", tmp_path / "img.idx", normalize="none",
                          options={"labels": str(tmp_path / "lab.idx")}))
    assert ds.input_shape == (5, 4, 1) and ds.num_classes == int(labels.max()) + 1
    np.testing.assert_array_equal(pairs(union_x(ds), union_y(ds)),
                                  pairs(images.astype(np.float32), labels))


def test_idx_pre_made_test_split(tmp_path):
    rng = np.random.default_rng(1)
    tr, te = random_images(rng, 40, 6, 6, 1)[..., 0], random_images(rng, 12, 6, 6, 1)[..., 0]
    write_idx(tmp_path / "train-images", tr)
    write_idx(tmp_path / "train-labels", rng.integers(0, 3, 40).astype(np.uint8))
    write_idx(tmp_path / "test-images", te)
    write_idx(tmp_path / "test-labels", rng.integers(0, 3, 12).astype(np.uint8))
    ds = load_dataset(cfg("idx", tmp_path / "train-images", normalize="none", options={
        "labels": "train-labels", "test_images": "test-images", "test_labels": "test-labels"}))
    np.testing.assert_array_equal(rows_sorted(ds.test.x), rows_sorted(te))
    assert len(ds.train) + len(ds.val) == 40 and len(ds.val) == 4


def test_idx_errors_name_the_file(tmp_path):
    images = np.zeros((10, 4, 4), np.uint8)
    img = write_idx(tmp_path / "img.idx", images)
    lab = write_idx(tmp_path / "lab.idx", np.zeros(10, np.uint8))
    opts = {"labels": str(lab)}
    bad_magic = tmp_path / "magic.idx"
    bad_magic.write_bytes(b"\x12\x34" + img.read_bytes()[2:])
    with raises_data_error(match_file=bad_magic, match="not an IDX file"):
        load_dataset(cfg("idx", bad_magic, options=opts))
    cut = tmp_path / "cut.idx"
    cut.write_bytes(img.read_bytes()[:-20])  # ends inside record 8
    with raises_data_error(match_file=cut, match="truncated") as info:
        load_dataset(cfg("idx", cut, options=opts))
    assert info.value.record == "index 8"
    few = write_idx(tmp_path / "few.idx", np.zeros(9, np.uint8))
    with raises_data_error(match_file=few, match="9 labels for 10 images"):
        load_dataset(cfg("idx", img, options={"labels": str(few)}))
    neg = write_idx(tmp_path / "neg.idx", np.array([0, 1, 2, -1, 0, 0, 0, 0, 0, 0], np.int8))
    with raises_data_error(match_file=neg, match="negative") as info:
        load_dataset(cfg("idx", img, options={"labels": str(neg)}))
    assert info.value.record == "index 3"
    with raises_data_error(match_file=lab, match="out of range"):
        write_idx(lab, np.full(10, 7, np.uint8))
        load_dataset(cfg("idx", img, options={"labels": str(lab), "num_classes": 5}))
    with raises_data_error(match_file=img, match="labels"):
        load_dataset(cfg("idx", img))
    with raises_data_error(match_file=tmp_path / "nope.idx", match="not found"):
        load_dataset(cfg("idx", tmp_path / "nope.idx", options=opts))


# --- CIFAR ---------------------------------------------------------------------------

def write_cifar10(folder, rng, n_train=(12, 8), n_test=6):
    folder.mkdir()
    train_imgs, train_labels = [], []
    for i, n in enumerate(n_train, start=1):
        imgs, labels = random_images(rng, n), rng.integers(0, 10, n).tolist()
        write_pickle(folder / f"data_batch_{i}", {
            b"batch_label": f"training batch {i}".encode(), b"data": cifar_rows(imgs),
            b"labels": labels, b"filenames": [b"f.png"] * n})
        train_imgs.append(imgs)
        train_labels += labels
    test_imgs = random_images(rng, n_test)
    write_pickle(folder / "test_batch", {b"data": cifar_rows(test_imgs),
                                         b"labels": rng.integers(0, 10, n_test).tolist()})
    write_pickle(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return np.concatenate(train_imgs), np.array(train_labels), test_imgs


def test_cifar10_reads_back(tmp_path):
    train, labels, test = write_cifar10(tmp_path / "c10", np.random.default_rng(0))
    ds = load_dataset(cfg("cifar", tmp_path / "c10", normalize="none"))
    assert ds.input_shape == (32, 32, 3) and ds.num_classes == 10
    assert ds.class_names == [f"c{i}" for i in range(10)]
    np.testing.assert_array_equal(rows_sorted(ds.test.x), rows_sorted(test))
    seen = np.concatenate([ds.train.x, ds.val.x])
    np.testing.assert_array_equal(rows_sorted(seen), rows_sorted(train))
    assert sorted(np.concatenate([ds.train.y, ds.val.y]).tolist()) == sorted(labels.tolist())


def test_cifar100_fine_and_coarse(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "c100"
    folder.mkdir()
    for name, n in (("train", 15), ("test", 5)):
        write_pickle(folder / name, {b"data": cifar_rows(random_images(rng, n)),
                                     b"fine_labels": rng.integers(0, 100, n).tolist(),
                                     b"coarse_labels": rng.integers(0, 20, n).tolist()})
    fine = load_dataset(cfg("cifar", folder, val_fraction=0.2))
    coarse = load_dataset(cfg("cifar", folder, val_fraction=0.2,
                              options={"label_mode": "coarse"}))
    assert fine.num_classes == 100 and coarse.num_classes == 20
    assert len(fine.test) == 5 and len(fine.train) == 12


def test_cifar_refuses_pickles_that_are_not_plain_data(tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    write_pickle(folder / "data_batch_1", {b"data": Payload(), b"labels": []})
    with raises_data_error(match_file=folder / "data_batch_1", match="refused"):
        load_dataset(cfg("cifar", folder))
    assert not marker.exists()
    write_pickle(folder / "data_batch_1", [1, 2, 3])
    with raises_data_error(match_file=folder / "data_batch_1", match="not a dict"):
        load_dataset(cfg("cifar", folder))


def test_cifar_label_out_of_range(tmp_path):
    write_cifar10(tmp_path / "c10", np.random.default_rng(0))
    batch = tmp_path / "c10" / "data_batch_2"
    d = pickle.loads(batch.read_bytes())
    d[b"labels"][5] = 10
    write_pickle(batch, d)
    with raises_data_error(match_file=batch, match="out of range") as info:
        load_dataset(cfg("cifar", tmp_path / "c10"))
    assert info.value.record == "index 5"


# --- image folders -------------------------------------------------------------------

def write_folder(root, rng, counts, size=(6, 5), mode="RGB"):
    written = {}
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            c = {"RGB": 3, "L": 1}[mode]
            a = rng.integers(0, 256, (size[1], size[0], c), dtype=np.uint8)
            Image.fromarray(a[..., 0] if c == 1 else a).save(root / name / f"{i}.png")
            written[root / name / f"{i}.png"] = (a, name)
    return written


def test_image_folder_reads_back(tmp_path):
    written = write_folder(tmp_path / "imgs", np.random.default_rng(0),
                           {"dog": 6, "cat": 5, "bird": 4})
    ds = load_dataset(cfg("image_folder", tmp_path / "imgs", normalize="none",
                          val_fraction=0.2))
    assert ds.class_names == ["bird", "cat", "dog"] and ds.input_shape == (5, 6, 3)
    ref_x = np.stack([a for a, _ in written.values()]).astype(np.float32)
    ref_y = np.array([ds.class_names.index(n) for _, n in written.values()])
    np.testing.assert_array_equal(pairs(union_x(ds), union_y(ds)), pairs(ref_x, ref_y))


def test_image_folder_resizes_or_refuses(tmp_path):
    write_folder(tmp_path / "imgs", np.random.default_rng(0), {"a": 5, "b": 5})
    ds = load_dataset(cfg("image_folder", tmp_path / "imgs", val_fraction=0.2), (8, 8, 3))
    assert ds.input_shape == (8, 8, 3)
    with raises_data_error(match_file=tmp_path / "imgs", match="expected 8x8"):
        load_dataset(cfg("image_folder", tmp_path / "imgs", resize=False), (8, 8, 3))


def test_image_folder_errors_name_the_file(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    write_folder(root, rng, {"a": 3, "b": 3})
    (root / "empty").mkdir()
    with raises_data_error(match_file=root / "empty", match="no images"):
        load_dataset(cfg("image_folder", root))
    (root / "empty").rmdir()
    grey = root / "b" / "grey.png"
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(grey)
    with raises_data_error(match_file=grey, match="1 channels"):
        load_dataset(cfg("image_folder", root))
    ok = load_dataset(cfg("image_folder", root, val_fraction=0.15, options={"mode": "L"}))
    assert ok.input_shape == (5, 6, 1)
    grey.unlink()
    broken = root / "a" / "broken.png"
    broken.write_bytes(b"this is not a png")
    with raises_data_error(match_file=broken, match="cannot read image"):
        load_dataset(cfg("image_folder", root))
    with raises_data_error(match_file=tmp_path / "missing", match="not found"):
        load_dataset(cfg("image_folder", tmp_path / "missing"))


# --- npz -----------------------------------------------------------------------------

def test_npz_pre_split_and_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    x_tr, x_te = rng.normal(size=(30, 4)), rng.normal(size=(10, 4))
    y_tr = rng.choice(["pear", "apple", "fig"], 30)
    y_te = rng.choice(["pear", "apple", "fig"], 10)
    np.savez(tmp_path / "d.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    ds = load_dataset(cfg("npz", tmp_path / "d.npz", normalize="none"))
    assert ds.class_names == ["apple", "fig", "pear"]
    np.testing.assert_allclose(rows_sorted(ds.test.x), rows_sorted(x_te.astype(np.float32)))
    names = [ds.class_names[i] for i in ds.test.y]
    by_row = {tuple(np.float32(r)): n for r, n in zip(x_te, y_te)}
    assert [by_row[tuple(r)] for r in ds.test.x] == names


def test_npz_regression_and_images(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 7, 7), dtype=np.uint8)
    np.savez(tmp_path / "img.npz", x=x, y=np.arange(20) % 4)
    ds = load_dataset(cfg("npz", tmp_path / "img.npz", normalize="none"), (14, 14, 3))
    assert ds.input_shape == (14, 14, 3) and ds.train.x.dtype == np.float32
    np.savez(tmp_path / "reg.npz", x=np.ones((20, 2)), y=np.linspace(0, 1, 20))
    reg = load_dataset(cfg("npz", tmp_path / "reg.npz"))
    assert reg.task == "regression" and reg.train.y.shape[1:] == (1,)


def test_npz_errors(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, features=np.zeros((10, 2)), y=np.arange(10) % 2)
    with raises_data_error(match_file=p, match="no array named 'x'"):
        load_dataset(cfg("npz", p))
    with raises_data_error(match_file=p, match="did you mean 'features'"):
        load_dataset(cfg("npz", p, options={"x_key": "feature"}))
    np.savez(p, x=np.zeros((10, 2)), y=np.arange(10))
    with raises_data_error(match_file=p, match="out of range for 5 classes") as info:
        load_dataset(cfg("npz", p, options={"num_classes": 5}))
    assert info.value.record == "y[5]"
    x = np.zeros((10, 2))
    x[4, 1] = np.nan
    np.savez(p, x=x, y=np.arange(10) % 2)
    with raises_data_error(match_file=p, match="NaN") as info:
        load_dataset(cfg("npz", p))
    assert info.value.record == "x[4]"
    np.savez(p, x=np.array([object()] * 10, dtype=object), y=np.arange(10) % 2)
    with raises_data_error(match_file=p, match="Python objects"):
        load_dataset(cfg("npz", p))


# --- CSV -----------------------------------------------------------------------------

def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_csv_reads_back_with_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 3)).round(4)
    labels = rng.choice(["setosa", "virginica", "versicolor"], 40)
    p = write_csv(tmp_path / "t.csv", ["a", "b", "c", "species"],
                  [[*f, s] for f, s in zip(feats, labels)])
    ds = load_dataset(cfg("csv", p, normalize="none"))
    assert ds.class_names == ["setosa", "versicolor", "virginica"] and ds.input_shape == (3,)
    got = {tuple(r): ds.class_names[y] for s in all_splits(ds) for r, y in zip(s.x, s.y)}
    assert got == {tuple(np.float32(f)): s for f, s in zip(feats, labels)}


def test_csv_target_option_and_task_guess(tmp_path):
    rows = [[i, i * 0.37, i % 3] for i in range(60)]
    p = write_csv(tmp_path / "t.csv", ["x", "price", "kind"], rows)
    reg = load_dataset(cfg("csv", p, normalize="none", options={"target": "price"}))
    assert reg.task == "regression" and reg.input_shape == (2,)
    np.testing.assert_allclose(np.sort(union_y(reg)[:, 0]), np.sort([r[1] for r in rows]),
                               rtol=1e-6)
    cls = load_dataset(cfg("csv", p))
    assert cls.task == "classification" and cls.num_classes == 3
    forced = load_dataset(cfg("csv", p, options={"target": "kind", "task": "regression"}))
    assert forced.task == "regression"


def test_csv_errors_name_line_and_column(tmp_path):
    rows = [[1.0, 2.0, 0], [3.0, 4.0, 1], [5.0, "nan", 0]] + [[1, 1, 1]] * 20
    p = write_csv(tmp_path / "t.csv", ["a", "b", "y"], rows)
    with raises_data_error(match_file=p, match="line 4, column 'b'"):
        load_dataset(cfg("csv", p))
    rows[2][1] = "inf"
    write_csv(p, ["a", "b", "y"], rows)
    with raises_data_error(match_file=p, match="line 4, column 'b'"):
        load_dataset(cfg("csv", p))
    rows[2] = [5.0, 6.0, -2]
    write_csv(p, ["a", "b", "y"], rows)
    with raises_data_error(match_file=p, match="negative") as info:
        load_dataset(cfg("csv", p))
    assert info.value.record == "line 4, column 'y'"
    with raises_data_error(match_file=p, match="did you mean 'b'"):
        load_dataset(cfg("csv", p, options={"target": "bb"}))


# --- configuration -------------------------------------------------------------------

def test_unknown_and_mistyped_options():
    with pytest.raises(DataError, match="did you mean 'classes'") as info:
        DataConfig(name="shapes", options={"clases": 5})
    assert info.value.option == "clases"
    with pytest.raises(DataError, match="option 'n'"):
        DataConfig(name="shapes", options={"n": "many"})
    with pytest.raises(DataError, match="takes no `path`"):
        DataConfig(name="digits", path="x.csv")
    with pytest.raises(ValidationError):
        DataConfig(name="digits", val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValidationError):
        DataConfig(name="digits", limt=3)


def test_importing_the_package_leaves_jax_alone():
    code = "import sys, archspec.data; sys.exit('jax' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_missing_files_are_named(tmp_path):
    for name in ("npz", "csv", "cifar"):
        with raises_data_error(match_file=tmp_path / "gone", match="not found"):
            load_dataset(cfg(name, tmp_path / "gone"))
    with raises_data_error(match="not given"):
        load_dataset(cfg("csv"))
