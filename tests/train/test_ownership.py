"""Two processes on one run folder: `train --resume RUN` twice. The second refuses (exit 1,
naming the first's pid and host) or waits with --wait; the first completes untouched."""
from __future__ import annotations

import socket
from pathlib import Path

from helpers import ROOT, only_run, read_records, run_cli, start_cli, wait_for_owner

EXP = ROOT / "experiments" / "digits_logistic.yaml"
EPOCHS = 40  # enough steps left after the kill that the resume still runs when the others start
RUN_FILES = ("config.yaml", "architecture.yaml", "sources.json", "env.json", "train.log",
             "metrics.jsonl", "attempts.json", "best.json", "checkpoints/latest",
             "checkpoints/best")


def assert_complete_once(run: Path) -> None:
    for name in RUN_FILES:
        assert (run / name).exists(), name
    records = read_records(run)
    assert [r["status"] for r in records if r["split"] == "summary"] == ["finished"]
    assert [r["epoch"] for r in records if r["split"] == "train"] == list(range(1, EPOCHS + 1))


def test_resume_twice_the_second_refuses_or_waits(tmp_path):
    # a run killed at its checkpoint of step 6, 794 steps left to resume
    killed = run_cli("train", EXP, "--epochs", str(EPOCHS), "--set", "checkpoint.every_steps=3",
                     "--output", tmp_path, env={"ARCHSPEC_FAULT_KILL": "committed:latest:6"})
    assert killed.returncode == -9, killed.stderr
    run = only_run(tmp_path)
    first = start_cli("train", "--resume", run)
    wait_for_owner(run, first.pid)
    waiter = start_cli("train", "--resume", run, "--wait")
    second = run_cli("train", "--resume", run, timeout=120)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out + err
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"is in use: process {first.pid} on host {socket.gethostname()}" in second.stderr
    assert "Traceback" not in second.stderr and "--wait" in second.stderr
    w_out, w_err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, w_out + w_err
    assert f"waiting for process {first.pid}" in w_out
    assert "already finished" in w_out and "nothing to resume" in w_out
    assert_complete_once(run)
    log = (run / "train.log").read_text()
    assert log.count("$ archspec train --resume") == 1   # the refused and the waiting wrote nothing


def test_wait_is_for_a_resume(tmp_path):
    r = run_cli("train", EXP, "--wait", "--output", tmp_path)
    assert r.returncode == 2 and "--wait" in r.stderr and not any(tmp_path.iterdir())
