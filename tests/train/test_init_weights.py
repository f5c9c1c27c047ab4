"""`init:` — a new run starts from a tensor file's weights: the values the file holds (read
back from the file with NumPy, not from archspec's own output), a coverage line printed and
logged, every gap a located error at the `init:` line before any run folder exists, and a
resume that restores its own checkpoint rather than the file."""
from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from helpers import ROOT, only_run, run_cli

ARCH = ROOT / "architectures" / "lenet5.yaml"


def lenet_file(tmp_path, drop=(), units=None) -> tuple:
    """A safetensors file in archspec's names for LeNet-5 (seeded values), and its tensors."""
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture
    import jax

    graph = load_architecture(ARCH)
    shapes = jax.eval_shape(build_model(graph).init, jax.random.key(0),
                            np.zeros((1, *next(iter(graph.inputs.values())).shape), np.float32))
    rng = np.random.default_rng(7)
    tensors = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(shapes["params"]):
        key = "params/" + "/".join(p.key for p in path)
        shape = leaf.shape if units is None or "logits" not in key else (*leaf.shape[:-1], units)
        tensors[key] = rng.normal(size=shape).astype(np.float32) * 0.05
    for key in drop:
        del tensors[key]
    path = tmp_path / "lenet.safetensors"
    save_file(tensors, str(path))
    return path, tensors


def experiment(tmp_path, init: str) -> object:
    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: e\narchitecture: {ARCH}\ndata: {{name: digits}}\nepochs: 1\n"
                   f"batch_size: 32\noptimizer: {{name: sgd, lr: 0.01}}\n{init}\n")
    return exp


def test_a_new_run_starts_from_the_files_values(tmp_path):
    from archspec.experiment import load as experiment_load
    from archspec.engine.step import init_state
    from archspec.train.setup import prepare_loaded

    path, tensors = lenet_file(tmp_path)
    loaded = experiment_load.load(experiment(tmp_path, f"init: {{from: {path}, map: archspec}}"))
    setup = prepare_loaded(loaded, smoke=True)
    state = init_state(setup.model, setup.graph, setup.tx, 0, setup.dataset.example())
    params, _ = setup.init_weights.apply(state.params, state.batch_stats)
    for key, value in tensors.items():
        _, layer, name = key.split("/")
        np.testing.assert_array_equal(np.asarray(params[layer][name]), value)
    report = setup.init_weights.report
    assert report.tensors == report.tensors_total == len(tensors)
    assert report.line().startswith(f"loaded {len(tensors)}/{len(tensors)} tensors from")


def test_train_prints_and_logs_the_coverage_and_resume_keeps_its_checkpoint(tmp_path):
    path, _ = lenet_file(tmp_path)
    exp = experiment(tmp_path, f"init: {{from: {path}, map: archspec}}")
    r = run_cli("train", exp, "--smoke", "--output", tmp_path / "runs")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = " ".join(r.stdout.split())
    assert "loaded 10/10 tensors from lenet.safetensors (archspec)" in out
    run = only_run(tmp_path / "runs")
    config = (run / "config.yaml").read_text()
    assert f"from: {path}" in config  # absolute: the run re-runs from any folder
    again = run_cli("train", "--resume", run)
    assert again.returncode == 0 and "loaded 10/10" not in again.stdout


def test_a_file_that_does_not_fit_is_refused_at_the_init_line(tmp_path):
    path, _ = lenet_file(tmp_path, drop=["params/c1/bias"], units=7)
    exp = experiment(tmp_path, f"init: {{from: {path}, map: archspec}}")
    r = run_cli("train", exp, "--output", tmp_path / "runs")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    err = " ".join(r.stderr.split())
    assert f"{exp}:7:" in err  # the init: line
    assert "wrong shape" in err and "missing" in err and "c1" in err
    assert "skip: [fc]" in err  # how a replaced head is declared
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("skip,ok", [("[]", False), ("[logits]", True)])
def test_skip_keeps_a_replaced_heads_initial_values(tmp_path, skip, ok):
    from archspec.experiment import load as experiment_load
    from archspec.train.setup import prepare_loaded
    from archspec.weights.errors import WeightsError

    path, _ = lenet_file(tmp_path, units=7)  # a head for 7 classes; the spec has 10
    loaded = experiment_load.load(experiment(
        tmp_path, f"init: {{from: {path}, map: archspec, skip: {skip}}}"))
    if not ok:
        with pytest.raises(WeightsError, match="wrong shape"):
            prepare_loaded(loaded, smoke=True)
        return
    report = prepare_loaded(loaded, smoke=True).init_weights.report
    assert report.skipped == ["logits"] and report.tensors == report.tensors_total - 2
