"""archspec/data/cache.py: arrays kept on disk by a hash of what made them; an entry that
cannot be read is made again, and the cache can be turned off."""
from __future__ import annotations

import numpy as np


def test_a_cut_short_cache_entry_is_made_again(tmp_path, monkeypatch):
    from archspec.data.cache import cached_arrays

    monkeypatch.setenv("ARCHSPEC_DATA_CACHE_DIR", str(tmp_path))
    made = cached_arrays("t", {"a": 1}, lambda: {"x": np.arange(5)})
    entry, = tmp_path.glob("t-*.npz")
    entry.write_bytes(entry.read_bytes()[:40])
    again = cached_arrays("t", {"a": 1}, lambda: {"x": np.arange(5) * 2})
    np.testing.assert_array_equal(made["x"], np.arange(5))
    np.testing.assert_array_equal(again["x"], np.arange(5) * 2)  # made, not the broken file
    monkeypatch.setenv("ARCHSPEC_NO_DATA_CACHE", "1")
    assert cached_arrays("t", {"a": 1}, lambda: {"x": np.zeros(1)})["x"].tolist() == [0.0]


def test_an_unwritable_cache_folder_only_costs_the_time(tmp_path, monkeypatch):
    from archspec.data.cache import cached_arrays

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("ARCHSPEC_DATA_CACHE_DIR", str(blocked / "data"))
    assert cached_arrays("t", {}, lambda: {"x": np.ones(2)})["x"].tolist() == [1.0, 1.0]


def test_sklearns_digits_come_from_the_cache_as_sklearn_gives_them(tmp_path, monkeypatch):
    """The second load of `digits` reads the cached arrays (scikit-learn is not asked
    again); both equal sklearn's own load_digits()."""
    import sklearn.datasets
    from sklearn.datasets import load_digits

    from archspec.data.sources.builtin import load_digits as archspec_digits

    monkeypatch.setenv("ARCHSPEC_DATA_CACHE_DIR", str(tmp_path))
    ref = load_digits()
    first = archspec_digits(None, None, None, 0)
    monkeypatch.setattr(sklearn.datasets, "load_digits",
                        lambda: (_ for _ in ()).throw(AssertionError("asked sklearn again")))
    again = archspec_digits(None, None, None, 0)
    for raw in (first, again):
        np.testing.assert_array_equal(raw.x[..., 0], ref.images.astype(np.float32))
        np.testing.assert_array_equal(raw.y, ref.target)
        assert raw.class_names == [str(n) for n in ref.target_names]
