"""CSV tables: a header that names a column twice is refused at the header line (the
target or a feature would otherwise be read from whichever column came first)."""
from __future__ import annotations

import pytest

from helpers import run_cli

from archspec.data import DataConfig, DataError, load_dataset


def table(path, header="a,b,a,y"):
    rows = "\n".join(f"{i},{i + 1},{i + 2},{i % 2}" for i in range(20))
    path.write_text(f"{header}\n{rows}\n")
    return path


@pytest.mark.parametrize("header,name,where", [("a,b,a,y", "a", "columns 1 and 3"),
                                                ("x,y,z,y", "y", "columns 2 and 4"),
                                                ("a, b ,b,y", "b", "columns 2 and 3")])
def test_a_column_named_twice_is_refused_at_the_header(tmp_path, header, name, where):
    path = table(tmp_path / "t.csv", header)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(name="csv", path=str(path)), None, seed=0)
    err = info.value
    assert err.file == str(path) and err.record == "line 1"
    assert f"column '{name}' is named twice in the header ({where})" in err.message


def test_the_cli_names_the_duplicate_column(tmp_path):
    path = table(tmp_path / "t.csv")
    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: e\narchitecture:\n  name: t\n  input: {{shape: [3]}}\n"
                   f"  layers: [dense: {{units: 2, activation: linear}}]\n"
                   f"  heads: {{y: {{output: softmax}}}}\n"
                   f"data: {{name: csv, path: {path}}}\nbatch_size: 4\n")
    r = run_cli("data", "show", exp, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    text = " ".join(r.stderr.split())
    assert f"{path}:line 1" in text and "column 'a' is named twice" in text
