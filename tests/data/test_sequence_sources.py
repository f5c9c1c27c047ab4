"""The sequence data sources: timeseries, text and video.

Each is checked through `load_dataset` as training uses it (shapes from the architecture's
input, dtypes, splits, normalisation) and through its generator with the noise off, where
every class must show the property that defines it.
"""
from __future__ import annotations

import numpy as np
import pytest

from archspec.data import DataConfig, DataError, load_dataset
from archspec.data.sources import text, timeseries, video


def cfg(name, **kw):
    return DataConfig(name=name, **kw)


def all_x(ds):
    return np.concatenate([ds.train.x, ds.val.x, ds.test.x])


# --- timeseries ------------------------------------------------------------------------------

def test_timeseries_shapes_and_classes():
    ds = load_dataset(cfg("timeseries", options={"n": 300, "classes": 5}), (40, 3), seed=0)
    assert ds.train.x.shape[1:] == (40, 3) and ds.train.x.dtype == np.float32
    assert ds.class_names == ["sine", "square", "sawtooth", "noise", "triangle"]
    assert ds.num_classes == 5 and ds.task == "classification"
    assert len(ds.train) + len(ds.val) + len(ds.test) == 300
    assert ds.norm_stats["kind"] == "standard" and len(ds.norm_stats["mean"]) == 3
    y = np.concatenate([ds.train.y, ds.val.y, ds.test.y])
    assert np.bincount(y).tolist() == [60] * 5
    flat = load_dataset(cfg("timeseries", options={"n": 50}), (32,), seed=0)
    assert flat.train.x.shape[1:] == (32,)


def test_timeseries_waveforms_without_noise():
    x, y = timeseries.generate(600, 6, (50, 2), 0.0, seed=3)
    d = np.diff(x, axis=1)
    for k in range(6):
        xs = x[y == k]
        if k == 1:    # square: two levels per channel
            assert all(len(np.unique(s[:, c].round(5))) == 2 for s in xs for c in range(2))
        elif k == 2:  # sawtooth: rises steadily, then drops
            dk = d[y == k]
            assert ((dk > 0).mean(axis=1) > 0.8).all() and (dk.min(axis=1) < 0).all()
        elif k == 3:  # noise: smooth random, not periodic
            assert len(np.unique(xs[:, :, 0].round(4))) > 0.9 * xs[:, :, 0].size
    # sine: s[t+1] + s[t-1] = 2cos(w)·s[t] + const holds exactly; not for the triangle
    for k, fits in ((0, True), (4, False)):
        for series in x[y == k][:20, :, 0].astype(np.float64):
            a = np.stack([series[1:-1], np.ones(48)], axis=1)
            b = series[2:] + series[:-2]
            resid = b - a @ np.linalg.lstsq(a, b, rcond=None)[0]
            assert (np.abs(resid).max() < 1e-4) == fits

def test_timeseries_seeded():
    a = load_dataset(cfg("timeseries", options={"n": 100}), (32, 1), seed=1)
    b = load_dataset(cfg("timeseries", options={"n": 100}), (32, 1), seed=1)
    c = load_dataset(cfg("timeseries", options={"n": 100}), (32, 1), seed=2)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.train.x, c.train.x)


def test_timeseries_bad_shape():
    with pytest.raises(DataError, match="cannot make time series"):
        load_dataset(cfg("timeseries"), (8, 8, 1), seed=0)


# --- text ------------------------------------------------------------------------------------

def test_text_tokens_padding_and_vocabulary():
    ds = load_dataset(cfg("text", options={"n": 400}), (12,), seed=0)
    x = all_x(ds)
    assert x.shape[1:] == (12,) and x.dtype == np.int32
    assert ds.norm_stats == {"kind": "none"}          # ids are never normalised
    assert ds.class_names == ["positive", "negative", "sports", "tech"]
    assert ds.vocabulary[:2] == ["<pad>", "<unk>"]
    assert len(ds.vocabulary) == 2 + len(text.COMMON) + 4 * 20
    assert 0 <= x.min() and x.max() < len(ds.vocabulary)
    # padding only after the last word, and at least 6 words (half the length)
    words = x != 0
    lengths = words.sum(axis=1)
    assert (words == (np.arange(12)[None] < lengths[:, None])).all()
    assert lengths.min() >= 6 and (x != 1).all()      # whole vocabulary: no <unk>


def test_text_topic_words_belong_to_the_class():
    opts = text.Options(n=200, classes=3)
    words = text.vocabulary(opts)
    x, y = text.generate(200, 3, 10, 0.0, len(words), seed=0)
    topic_of = {w: k for k, ws in enumerate(list(text.TOPICS.values())[:3]) for w in ws}
    for ids, label in zip(x, y):
        topics = {topic_of[words[i]] for i in ids if words[i] in topic_of}
        assert topics == {int(label)}                  # at least one, none of other classes
    sentence = text.decode(x[0], words)
    assert sentence and "<pad>" not in sentence


def test_text_vocabulary_size_and_noise():
    ds = load_dataset(cfg("text", options={"n": 300, "vocabulary_size": 40}), (16,), seed=0)
    x = all_x(ds)
    assert len(ds.vocabulary) == 40 and x.max() < 40 and (x == 1).any()  # <unk> used
    noisy = text.generate(2000, 4, 16, 0.5, 200, seed=0)
    clean = text.generate(2000, 4, 16, 0.0, 200, seed=0)
    assert not np.array_equal(noisy[0], clean[0])


def test_text_needs_a_token_sequence():
    with pytest.raises(DataError, match="sequences of token ids"):
        load_dataset(cfg("text"), (16, 8), seed=0)
    with pytest.raises(DataError, match="vocabulary_size"):
        cfg("text", options={"vocabulary_sise": 10})


# --- video -----------------------------------------------------------------------------------

def test_video_shapes_and_classes():
    ds = load_dataset(cfg("video", options={"n": 80}), (6, 12, 12, 3), seed=0)
    assert ds.train.x.shape[1:] == (6, 12, 12, 3) and ds.train.x.dtype == np.float32
    assert ds.class_names == ["left", "right", "up", "down"]
    grey = load_dataset(cfg("video", options={"n": 40, "classes": 2}), (4, 10, 10), seed=0)
    assert grey.train.x.shape[1:] == (4, 10, 10) and grey.class_names == ["left", "right"]
    with pytest.raises(DataError, match="cannot draw video"):
        load_dataset(cfg("video"), (16, 16, 1), seed=0)


def test_video_square_moves_in_the_class_direction():
    x, y = video.generate(200, 4, (8, 16, 16, 1), 0.0, seed=0)
    assert x.min() >= 0 and x.max() <= 1
    fg = x[..., 0] > x[..., 0].mean(axis=(1, 2, 3), keepdims=True)  # the bright square
    area = fg.sum(axis=(2, 3))
    assert (area == area[:, :1]).all() and (area > 0).all()        # whole square every frame
    rows = (fg.sum(axis=3) * np.arange(16)).sum(axis=2) / area      # (n, T) centroid row
    cols = (fg.sum(axis=2) * np.arange(16)).sum(axis=2) / area
    dy, dx = rows[:, -1] - rows[:, 0], cols[:, -1] - cols[:, 0]
    want = np.array(list(video.DIRECTIONS.values()))[y]             # (dy, dx) per class
    assert (np.sign(dy) == want[:, 0]).all() and (np.sign(dx) == want[:, 1]).all()
    assert (np.maximum(abs(dy), abs(dx)) >= 7).all()                # at least 1 px per frame


def test_video_seeded():
    a = video.generate(20, 4, (4, 8, 8, 1), 0.1, seed=5)
    b = video.generate(20, 4, (4, 8, 8, 1), 0.1, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_training_refuses_an_embedding_smaller_than_the_vocabulary(tmp_path):
    from archspec.experiment import config as C
    from archspec.train.setup import TrainError, prepare

    exp_file = tmp_path / "small.yaml"
    exp_file.write_text(
        "name: small\narchitecture:\n  name: bag\n  input: {shape: [8], dtype: int32}\n"
        "  layers:\n    - embedding: {vocabulary: 30, dimension: 4, name: words}\n"
        "    - pool: {op: avg, global: true}\n    - dense: 4\n"
        "  heads: {topic: {output: softmax}}\n"
        "data: {name: text, options: {n: 50}}\nbatch_size: 16\n")
    exp, root = C.load_experiment(exp_file)
    graph, text_ = C.architecture_graph(exp, str(exp_file), root)
    with pytest.raises(TrainError, match="words has vocabulary 30 but the data has 110"):
        prepare(exp, graph, text_, {})
    exp, root = C.load_experiment(exp_file, ["data.options.vocabulary_size=30"])
    assert len(prepare(exp, graph, text_, {}).dataset.vocabulary) == 30
