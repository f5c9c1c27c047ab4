"""`archspec weights inspect|convert` as a user runs them."""
from __future__ import annotations

import json
import pickle
import re

import numpy as np

from helpers import ROOT, run_cli

FIXTURE = ROOT / "tests" / "weights" / "fixtures" / "layout_net.json"
SPEC = ROOT / "tests" / "weights" / "specs" / "layout_net.yaml"
MAP = ROOT / "tests" / "weights" / "specs" / "layout_net_map.yaml"


def state_file(tmp_path, edit=None):
    from archspec.weights import read, synthetic

    meta = json.loads(FIXTURE.read_text())
    sd = synthetic.state_dict(meta["manifest"], meta["seed"])
    if edit:
        edit(sd)
    return read.write_tensors(sd, tmp_path / "net.safetensors"), sd


def test_inspect_lists_tensors_and_totals(tmp_path):
    path, sd = state_file(tmp_path)
    r = run_cli("weights", "inspect", path)
    assert r.returncode == 0, r.stderr
    assert "up.weight" in r.stdout and "(8, 3, 3, 3)" in r.stdout
    assert re.search(r"bn1\.num_batches_tracked +\(\) +int64 +1", r.stdout)
    assert "13 tensors, 2,411 floating-point values" in r.stdout   # 2,395 + 2 × 8 statistics
    data = json.loads(run_cli("weights", "inspect", path, "--json").stdout)
    assert {t["name"]: t["shape"] for t in data["tensors"]}["fc.weight"] == [5, 384]


def test_convert_writes_archspec_names(tmp_path):
    path, sd = state_file(tmp_path)
    out = tmp_path / "own.npz"
    r = run_cli("weights", "convert", path, "--spec", SPEC, "--map", MAP, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "loaded 12/12 tensors from net.safetensors" in r.stdout
    assert "2,395 of 2,395 parameters (100.0%)" in r.stdout
    with np.load(out) as z:
        own = dict(z)
    assert sorted(own)[:3] == ["batch_stats/bn/mean", "batch_stats/bn/var", "params/bn/bias"]
    # torch's (O, I/groups, kh, kw) as Flax's (kh, kw, I/groups, O)
    np.testing.assert_array_equal(own["params/grouped/kernel"],
                                  sd["c1.weight"].transpose(2, 3, 1, 0))
    back = run_cli("weights", "convert", out, "--spec", SPEC, "--map", "archspec",
                   "-o", tmp_path / "again.safetensors")
    assert back.returncode == 0 and "loaded 12/12 tensors" in back.stdout


def test_convert_with_a_new_head(tmp_path):
    def ten_classes(sd):
        sd["fc.weight"] = np.zeros((10, 384), np.float32)
        sd["fc.bias"] = np.zeros(10, np.float32)

    path, _ = state_file(tmp_path, ten_classes)
    r = run_cli("weights", "convert", path, "--spec", SPEC, "--map", MAP, "-o",
                tmp_path / "o.safetensors")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "2 wrong shape" in r.stderr and "fc.weight -> params/fc/kernel" in r.stderr
    r = run_cli("weights", "convert", path, "--spec", SPEC, "--map", MAP, "--skip", "fc",
                "-o", tmp_path / "o.safetensors")
    assert r.returncode == 0, r.stderr
    assert "skipped: fc" in r.stdout and "wrote" in r.stdout


def test_bad_files_exit_2_with_one_message(tmp_path):
    pkl = tmp_path / "evil.pth"
    pkl.write_bytes(pickle.dumps({"w": [1, 2, 3]}, protocol=2))
    cut = tmp_path / "cut.safetensors"
    path, _ = state_file(tmp_path)
    cut.write_bytes(path.read_bytes()[:-100])
    for bad, words in ((pkl, "torch"), (cut, "truncated safetensors file")):
        r = run_cli("weights", "inspect", bad)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and words in r.stderr
        assert r.stderr.count("error:") == 1
