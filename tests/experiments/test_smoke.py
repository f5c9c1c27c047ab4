"""Every shipped experiment trains in smoke mode through the CLI and leaves a complete run
folder (a file of its own so the suite's two workers share these runs)."""
from __future__ import annotations

import json

import pytest

from helpers import ROOT, only_run, read_records, run_cli

EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("exp", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_runs_in_smoke_mode(exp, tmp_path):
    r = run_cli("train", exp, "--smoke", "--output", tmp_path)
    assert r.returncode == 0, r.stderr + r.stdout
    run = only_run(tmp_path)
    for name in ("config.yaml", "architecture.yaml", "env.json", "metrics.jsonl"):
        assert (run / name).exists(), name
    assert list((run / "checkpoints" / "latest").iterdir())
    assert list((run / "events").iterdir())
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 0 and env["devices"]
    summary = read_records(run)[-1]
    assert summary["split"] == "summary" and summary["status"] == "finished"
