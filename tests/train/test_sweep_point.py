"""The same sweep point started twice, the second before the first's first checkpoint (a
requeued or resubmitted array task): the second refuses, naming the first; the first
completes untouched (every run file present, one summary). A point whose worker was killed
before its first checkpoint was complete starts over instead of failing to resume."""
from __future__ import annotations

import json
import socket

import yaml

from helpers import ROOT, read_records, run_cli, start_cli, wait_for_owner

RUN_FILES = ("config.yaml", "architecture.yaml", "sources.json", "env.json", "train.log",
             "metrics.jsonl", "attempts.json", "best.json", "checkpoints/latest",
             "checkpoints/best")

EXP = ROOT / "experiments" / "digits_logistic.yaml"


def test_the_same_point_twice_the_second_refuses(tmp_path):
    from archspec.experiment.sweep import load_sweep

    file = tmp_path / "s.yaml"
    file.write_text(yaml.safe_dump({"name": "s", "experiment": str(EXP),
                                    "set": {"epochs": 6}, "grid": {"optimizer.lr": [0.01]}}))
    out = tmp_path / "out"
    (point,) = load_sweep(file, str(out)).points()
    run = out / "s" / point.id
    first = start_cli("sweep", file, "--point", "0", "--output", out)
    wait_for_owner(run, first.pid)
    second = run_cli("sweep", file, "--point", "0", "--output", out, timeout=120)
    had_checkpoint = any(run.glob("checkpoints/*/[0-9]*"))
    out_, err = first.communicate(timeout=300)
    assert first.returncode == 0, out_ + err
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"is in use: process {first.pid} on host {socket.gethostname()}" in second.stderr
    assert "Traceback" not in second.stderr
    for name in RUN_FILES:
        assert (run / name).exists(), name
    summaries = [line for line in (run / "metrics.jsonl").read_text().splitlines()
                 if '"split": "summary"' in line]
    assert len(summaries) == 1 and '"finished"' in summaries[0]
    print("the second started", "after" if had_checkpoint else "before",
          "the first's first checkpoint")


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
