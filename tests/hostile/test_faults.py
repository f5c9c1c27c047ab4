"""Faults a long run meets: kills (also mid-checkpoint), signals, a full disk, an unwritable
folder, corrupted or foreign checkpoints. The last good checkpoint must always load."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import ARCHSPEC, ROOT, only_run, run_cli

EXP = ROOT / "experiments/digits_mlp.yaml"
ARGS = ["train", EXP, "--epochs", "3", "--set", "checkpoint.every_steps=3",
        "--set", "eval_splits=[val]", "--set", "expect={}"]


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen([*ARCHSPEC, *map(str, ARGS), "--output", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(out: Path, min_step: int, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = [int(p.name) for p in out.glob("*/*/checkpoints/latest/*") if p.name.isdigit()]
        if steps and max(steps) >= min_step:
            return max(steps)
        time.sleep(0.002)
    raise AssertionError("no checkpoint appeared")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    r = run_cli(*ARGS, "--output", out)
    assert r.returncode == 0, r.stderr
    return only_run(out)


# one kill point in `make test`; the others (during and after later writes) in `make test-all`
@pytest.mark.parametrize("delay", [0.0, pytest.param(0.03, marks=pytest.mark.slow),
                                   pytest.param(0.15, marks=pytest.mark.slow)])
def test_sigkill_at_several_points_then_resume(tmp_path, delay):
    proc = _start(tmp_path)
    _wait_for_checkpoint(tmp_path, 3)
    time.sleep(delay)  # lands before, during or after further checkpoint writes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = only_run(tmp_path)
    before = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    r = run_cli("train", "--resume", run)
    assert r.returncode == 0, r.stderr + r.stdout
    after = (run / "metrics.jsonl").read_text().splitlines()
    # nothing written before the kill about finished epochs is lost
    kept = [l for l in before if json.loads(l)["split"] in ("train", "val")]
    assert all(l in after for l in kept[: len(kept) - 2])
    assert json.loads(after[-1])["status"] == "finished"
    assert [json.loads(l)["epoch"] for l in after if json.loads(l)["split"] == "train"] == [1, 2, 3]


@pytest.mark.parametrize("sig", [signal.SIGINT,
                                 pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_signal_stops_cleanly_and_says_how_to_resume(tmp_path, sig):
    proc = _start(tmp_path)
    _wait_for_checkpoint(tmp_path, 3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err  # interrupted: never the exit code of a finished run
    assert "archspec train --resume" in out
    assert "Traceback" not in err
    run = only_run(tmp_path)
    last = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["status"] == "stopped"
    r = run_cli("train", "--resume", run)
    assert r.returncode == 0, r.stderr


def test_corrupted_newest_checkpoint_falls_back_to_the_previous(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    latest = run / "checkpoints" / "latest"
    newest = max((p for p in latest.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    for f in newest.rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(b"\x00garbage" * 3)
    r = run_cli("eval", run, "--checkpoint", "latest")
    assert r.returncode == 0, r.stderr
    assert f"checkpoint {newest.name} cannot be read" in r.stdout + r.stderr


def test_every_checkpoint_corrupted_is_a_clear_error(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    for f in (run / "checkpoints").rglob("*"):
        if f.is_file():
            f.write_bytes(f.read_bytes()[: max(f.stat().st_size // 3, 1)])  # truncated
    r = run_cli("train", "--resume", run)
    assert r.returncode == 1
    assert "cannot be read" in r.stderr and "corrupted or truncated" in r.stderr
    assert "Traceback" not in r.stderr


def test_checkpoint_of_another_architecture_names_the_parameter(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    arch = run / "architecture.yaml"
    arch.write_text(arch.read_text().replace("units: 128", "units: 100"))
    r = run_cli("train", "--resume", run)
    assert r.returncode == 1
    assert "hidden1" in r.stderr and "architecture" in r.stderr
    assert "Traceback" not in r.stderr


def test_disk_full_is_a_clear_error_and_keeps_the_checkpoint(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    cfg = run / "config.yaml"
    cfg.write_text(cfg.read_text().replace("epochs: 3", "epochs: 4"))
    (run / "metrics.jsonl").unlink()
    os.symlink("/dev/full", run / "metrics.jsonl")  # every write: "No space left on device"
    r = run_cli("train", "--resume", run)
    assert r.returncode == 1
    assert f"error: no space left on device writing {run / 'metrics.jsonl'}" in r.stderr
    assert f"archspec train --resume {run}" in r.stderr and "Traceback" not in r.stderr
    (run / "metrics.jsonl").unlink()
    r = run_cli("eval", run, "--checkpoint", "latest")  # the last good checkpoint still loads
    assert r.returncode == 0, r.stderr


def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = run_cli("train", EXP, "--output", blocker / "runs")
    assert r.returncode == 1
    assert "cannot create the run folder" in r.stderr and "Traceback" not in r.stderr


def test_data_problem_is_reported_before_training(tmp_path):
    csv = tmp_path / "table.csv"
    csv.write_text("a,b,label\n1,2,0\n3,nan,1\n5,6,0\n" + "1,1,1\n" * 20)
    arch = tmp_path / "arch.yaml"
    arch.write_text("name: t\ninput: {shape: [2]}\nlayers:\n  - dense: 2\n"
                    "heads: {o: {output: softmax}}\n")
    r = run_cli("train", arch, "--set", "data.name=csv", "--set", f"data.path={csv}",
                "--output", tmp_path / "runs")
    assert r.returncode == 2, r.stderr
    assert "table.csv" in r.stderr and "line 3" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("metrics.jsonl"))
