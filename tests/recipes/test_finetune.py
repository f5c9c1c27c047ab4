"""recipes/finetune_resnet18.yaml end to end on a generated image folder and a seeded
torchvision-layout ResNet-18 state dict (no download, no torch): the weights load (all but
the replaced head), the frozen stem ends the run with the file's values (compared with the
file's tensor transposed by NumPy from PyTorch's layout), and the run finishes."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

from helpers import ROOT, only_run, read_records, run_cli

RECIPE = ROOT / "recipes" / "finetune_resnet18.yaml"


def image_folder(root, classes=("cats", "dogs"), n=12):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


def test_the_finetuning_recipe_runs_on_a_generated_folder(tmp_path):
    from archspec.weights.synthetic import state_dict

    fixture = json.loads((ROOT / "tests/weights/fixtures/resnet18.json").read_text())
    tensors = state_dict(fixture["manifest"], seed=3)
    weights = tmp_path / "resnet18.safetensors"
    save_file(tensors, str(weights))
    r = run_cli("train", RECIPE, "--smoke", "--batch-size", "4", "--input-shape", "64,64,3",
                "--set", f"data.path={image_folder(tmp_path / 'images')}",
                "--set", f"init.from={weights}", "--output", tmp_path / "runs", timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = " ".join(r.stdout.split())
    assert "tensors from resnet18.safetensors (torchvision/resnet)" in out
    run = only_run(tmp_path / "runs")
    assert read_records(run)[-1]["status"] == "finished"

    from archspec.use.evaluate import load_state

    _, state, _ = load_state(run, "latest")
    stem = np.transpose(tensors["conv1.weight"], (2, 3, 1, 0))  # OIHW -> HWIO
    np.testing.assert_array_equal(np.asarray(state.params["conv1"]["kernel"]), stem)
    np.testing.assert_array_equal(np.asarray(state.batch_stats["bn1"]["mean"]),
                                  tensors["bn1.running_mean"])
