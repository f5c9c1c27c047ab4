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
