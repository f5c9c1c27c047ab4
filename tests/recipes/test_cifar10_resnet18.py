"""recipes/cifar10_resnet18.yaml: the recipe loads as written, decays exactly the
network's weights, and trains in smoke mode on a small folder in the real CIFAR-10 layout."""
from __future__ import annotations

import pickle

import jax
import numpy as np
import pytest
import yaml

from helpers import ROOT, only_run, read_records, run_cli

RECIPE = ROOT / "recipes" / "cifar10_resnet18.yaml"
PARAMS = 11_173_962
BN = 9_600      # γ and β of every BatchNorm: as many as its running means and variances
FC_BIAS = 10


def write_cifar10(folder, n_train=(20, 20), n_test=12, seed=0):
    """A cifar-10-batches-py folder: data_batch_N and test_batch pickles of uint8 rows (1024
    red, 1024 green, then 1024 blue bytes per image) and batches.meta."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)

    def batch(n, extra):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        rows = images.transpose(0, 3, 1, 2).reshape(n, 3 * 32 * 32)
        return {b"data": rows, b"labels": rng.integers(0, 10, n).tolist(), **extra}

    def dump(name, obj):
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    for i, n in enumerate(n_train, start=1):
        dump(f"data_batch_{i}", batch(n, {b"batch_label": f"training batch {i}".encode(),
                                          b"filenames": [b"x.png"] * n}))
    dump("test_batch", batch(n_test, {b"batch_label": b"testing batch 1"}))
    dump("batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)]})
    return folder


def test_the_recipe_is_what_it_says():
    from archspec.experiment.config import load_experiment

    exp, _ = load_experiment(RECIPE)
    opt = exp.optimizer
    assert (opt.name, opt.momentum, opt.weight_decay) == ("nesterov", 0.9, 5e-4)
    assert sorted(opt.weight_decay_exclude) == ["bias", "norm"]
    assert opt.schedule.name == "cosine" and opt.schedule.warmup_steps > 0
    assert (exp.batch_size, exp.epochs) == (512, 30)
    assert exp.loss["classes"].label_smoothing == 0.1
    (crop, crop_opts), (flip, flip_opts) = [step.op for step in exp.augment]
    assert (crop, crop_opts.padding, flip, flip_opts.mode) == ("random_crop", 4, "flip",
                                                               "horizontal")
    assert exp.data.name == "cifar" and exp.data.path.endswith("cifar-10-batches-py")


def test_only_the_weights_decay():
    """Every conv kernel and the fc kernel decay; BatchNorm's γ/β and the fc bias do not."""
    from archspec.model.build import abstract_variables, build_model
    from archspec.spec.resolve import load_architecture
    from archspec.engine.optim import decay_mask

    graph = load_architecture(ROOT / "architectures" / "resnet18_cifar.yaml")
    params = abstract_variables(build_model(graph), graph)["params"]
    mask = decay_mask(["bias", "norm"])(params)
    sizes = [int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params)]
    decays = jax.tree_util.tree_leaves(mask)
    assert sum(sizes) == PARAMS
    assert sum(n for n, d in zip(sizes, decays) if d) == PARAMS - BN - FC_BIAS
    assert mask["fc"] == {"kernel": True, "bias": False}


@pytest.mark.slow   # ResNet-18 compiles in about 30 s on 2 CPU cores
def test_smoke_run_on_a_cifar_folder(tmp_path):
    folder = write_cifar10(tmp_path / "cifar-10-batches-py")
    out = tmp_path / "runs"
    # --smoke keeps at most 300 examples: batch 512 would not fit the 36 training images
    r = run_cli("train", RECIPE, "--smoke", "--batch-size", "12",
                "--set", f"data.path={folder}", "--output", out)
    assert r.returncode == 0, r.stderr + r.stdout
    assert ("cifar10_resnet18: resnet18_cifar, 11,173,962 parameters, cifar "
            "(36 train / 4 val / 12 test), 3 steps") in r.stdout, r.stdout
    assert "finished" in r.stdout and "test (best checkpoint, step 3)" in r.stdout
    run = only_run(out)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["optimizer"]["weight_decay_exclude"] == ["bias", "norm"]
    assert config["data"]["path"] == str(folder)
    summary = read_records(run)[-1]
    assert summary["split"] == "summary" and summary["status"] == "finished"
