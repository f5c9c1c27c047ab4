"""Running one sweep point: a point whose worker was killed before its first checkpoint
was complete (an empty `checkpoints/latest`) starts over instead of failing to resume."""
from __future__ import annotations

import json

import yaml

from helpers import ROOT, read_records, run_cli


def test_a_point_killed_before_its_first_checkpoint_starts_over(tmp_path):
    from archspec.experiment.sweep import load_sweep

    file = tmp_path / "lr.yaml"
    file.write_text(yaml.safe_dump({"name": "lr", "set": {"epochs": 1},
                                    "experiment": str(ROOT / "experiments/digits_logistic.yaml"),
                                    "grid": {"optimizer.lr": [0.01]}}))
    out = tmp_path / "out"
    run_dir = load_sweep(file, str(out)).point_dir(load_sweep(file, str(out)).points()[0])
    for which in ("latest", "best"):   # what a kill during the first save leaves
        (run_dir / "checkpoints" / which).mkdir(parents=True)
    (run_dir / "config.yaml").write_text("name: digits_logistic\n")
    r = run_cli("sweep", file, "--output", out, "--point", "0")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "trained" in r.stdout and "resumed" not in r.stdout
    assert read_records(run_dir)[-1]["status"] == "finished"
    assert json.loads((run_dir / "attempts.json").read_text())[-1]["outcome"] == "finished"
