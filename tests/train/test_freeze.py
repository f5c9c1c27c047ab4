"""`freeze:` — layers trained as in evaluation and never updated: a frozen layer ends a run
with the values it started with (here a file's, through `init:`, compared with the file read
by NumPy), a frozen batchnorm keeps its running statistics, the others learn, and a glob
that names no layer is a located error."""
from __future__ import annotations

import numpy as np

from helpers import ROOT, only_run, run_cli

from train.test_init_weights import lenet_file

ARCH = ROOT / "architectures" / "lenet5.yaml"


def final_state(run):
    from archspec.use.evaluate import load_state

    _, state, _ = load_state(run, "latest")
    return state


def test_frozen_layers_keep_the_files_values_and_the_others_learn(tmp_path):
    path, tensors = lenet_file(tmp_path)
    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: e\narchitecture: {ARCH}\ndata: {{name: digits}}\nepochs: 1\n"
                   "batch_size: 32\noptimizer: {name: adamw, lr: 0.01, weight_decay: 0.1}\n"
                   f"init: {{from: {path}, map: archspec}}\nfreeze: [c1, f6]\n")
    r = run_cli("train", exp, "--smoke", "--output", tmp_path / "runs")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    params = final_state(only_run(tmp_path / "runs")).params
    for key, value in tensors.items():
        _, layer, name = key.split("/")
        got = np.asarray(params[layer][name])
        if layer in ("c1", "f6"):
            np.testing.assert_array_equal(got, value)   # no update, no weight decay
        else:
            assert not np.array_equal(got, value), key  # trained


BN_NET = """\
  name: bn
  input: {shape: [8, 8, 1]}
  layers:
    - conv: {maps: 4, kernel: 3, padding: same, name: conv}
    - batchnorm: {name: bn}
    - flatten
    - dense: {units: 10, activation: linear, name: out}
  heads: {y: {from: out, output: softmax}}
"""


def test_a_frozen_batchnorm_keeps_its_running_statistics(tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text("name: e\narchitecture:\n" + BN_NET + "data: {name: digits}\nepochs: 1\n"
                   "batch_size: 32\nfreeze: [bn]\n")
    r = run_cli("train", exp, "--smoke", "--output", tmp_path / "runs")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    state = final_state(only_run(tmp_path / "runs"))
    np.testing.assert_array_equal(np.asarray(state.batch_stats["bn"]["mean"]), np.zeros(4))
    np.testing.assert_array_equal(np.asarray(state.batch_stats["bn"]["var"]), np.ones(4))
    np.testing.assert_array_equal(np.asarray(state.params["bn"]["scale"]), np.ones(4))


def test_a_glob_that_names_no_layer_is_refused_at_its_line(tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: e\narchitecture: {ARCH}\ndata: {{name: digits}}\n"
                   "freeze: [c1, f7]\n")
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    err = " ".join(r.stderr.split())
    assert f"{exp}:4:9" in err and "freeze: 'f7' names no layer of lenet5" in err
    assert "f6" in err  # did you mean
    assert not (tmp_path / "runs").exists()


def test_summary_of_an_experiment_marks_frozen_layers_and_counts_them_apart(tmp_path):
    """LeNet-5 with c1 and c3 frozen: c1 holds 5·5·1·6 + 6 = 156 parameters and c3
    5·5·6·16 + 16 = 2,416 (LeCun et al.'s full connection table), 61,706 in all."""
    import json

    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: e\narchitecture: {ARCH}\ndata: {{name: digits}}\n"
                   "freeze: [c1, c3]\n")
    r = run_cli("summary", exp, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert (s["frozen"], s["trainable"]) == (156 + 2416, 61706 - 156 - 2416)
    assert [row["name"] for row in s["rows"] if row["frozen"]] == ["c1", "c3"]
    table = run_cli("summary", exp)
    assert "conv, frozen" in table.stdout and "frozen parameters" in table.stdout
