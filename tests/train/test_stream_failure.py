"""A streamed image that cannot be decoded in the middle of an epoch: the run ends with
exit 1 (steps were trained), the file named on the terminal and in train.log, and the run
marked failed in metrics.jsonl (never left "running/killed"). With grain workers, no
shared memory is left behind."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from helpers import only_run, read_records, run_cli

from archspec.data import DataConfig, load_dataset
from archspec.data.batching import _order


def folder(root, n=40):
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"c{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        a = rng.uniform(0, 255, (16, 16)).astype(np.uint8)
        Image.fromarray(a).save(d / f"{i}.jpg", quality=90)
    return root


def experiment(tmp_path, root, workers):
    exp = tmp_path / "e.yaml"
    exp.write_text(f"""\
name: e
architecture:
  name: t
  input: {{shape: [16, 16, 1]}}
  layers: [flatten, dense: {{units: 2, activation: linear, name: out}}]
  heads: {{y: {{from: out, output: softmax}}}}
data: {{name: image_folder, path: {root}, normalize: none, workers: {workers},
       options: {{in_memory: false}}}}
epochs: 1
batch_size: 4
steps_per_execution: 1
seed: 0
""")
    return exp


def ninth_training_image(root) -> str:
    """The file the 3rd step of epoch 0 reads: the splits and the batch order are pure
    functions of the seed, so the test finds it as the run will."""
    ds = load_dataset(DataConfig(name="image_folder", path=str(root), normalize="none",
                                 options={"in_memory": False}), (16, 16, 1), seed=0)
    x = ds.train.x
    order = _order(0, 0, len(x))
    return x.records[int(x.index[order[9]])]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_truncated_jpeg_mid_epoch_fails_the_run_with_the_file_named(tmp_path, workers):
    root = folder(tmp_path / "imgs")
    victim = ninth_training_image(root)
    data = open(victim, "rb").read()
    # cut a few bytes into the scan: every header stays readable, the pixels are not
    open(victim, "wb").write(data[:data.index(b"\xff\xda") + 24])
    out = tmp_path / "runs"
    r = run_cli("train", experiment(tmp_path, root, workers), "--output", out, timeout=300)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "leaked shared_memory" not in r.stderr
    assert victim in " ".join(r.stderr.split())
    run = only_run(out)
    last = read_records(run)[-1]
    assert last["split"] == "summary" and last["status"] == "failed" and last["step"] >= 2
    assert victim in last["error"]
    log = " ".join((run / "train.log").read_text().split())
    assert victim in log and "truncated" in log.lower()
    listed = run_cli("runs", out, "--json", timeout=60)
    assert [row["status"] for row in json.loads(listed.stdout)] == ["failed"]
