"""archspec/cachedirs.py: the caches live under $XDG_CACHE_HOME/archspec (~/.cache without
it), each one movable by its own variable and turned off by another."""
from __future__ import annotations

from pathlib import Path

import pytest

from archspec.cachedirs import cache_home, folder, switched_off


def test_the_home_follows_xdg_else_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_home() == tmp_path / "archspec"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert cache_home() == tmp_path / "me" / ".cache" / "archspec"


def test_a_kinds_variable_moves_it(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("ARCHSPEC_TEST_DIR", raising=False)
    assert folder("ARCHSPEC_TEST_DIR", "data") == tmp_path / "archspec" / "data"
    monkeypatch.setenv("ARCHSPEC_TEST_DIR", "~/elsewhere")
    assert folder("ARCHSPEC_TEST_DIR", "data") == Path.home() / "elsewhere"


@pytest.mark.parametrize("value, off", [("", False), ("0", False), ("false", False),
                                        ("No", False), ("1", True), ("yes", True)])
def test_switched_off(monkeypatch, value, off):
    monkeypatch.setenv("ARCHSPEC_TEST_OFF", value)
    assert switched_off("ARCHSPEC_TEST_OFF") is off
