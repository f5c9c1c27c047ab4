"""`archspec runs` and `archspec plot` on run folders whose files are hostile: a FIFO, a
link to /dev/zero, a huge file as metrics.jsonl, env.json or config.yaml. Nothing hangs,
nothing is read without bound; the run is named with what is wrong."""
from __future__ import annotations

import json
import os

import pytest

from helpers import run_cli

RECORDS = [{"step": 4, "epoch": 1, "split": "train", "loss": 0.9, "accuracy": 0.5},
           {"step": 4, "epoch": 1, "split": "val", "loss": 1.0, "accuracy": 0.4},
           {"step": 4, "split": "summary", "status": "finished", "seconds": 1.0}]


def run_folder(root, name, metrics="good"):
    run = root / "exp" / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("name: exp\nepochs: 1\n")
    (run / "architecture.yaml").write_text("name: t\n")
    (run / "env.json").write_text(json.dumps({"started": "2024-01-01T00:00:00"}))
    path = run / "metrics.jsonl"
    if metrics == "good":
        path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    elif metrics == "fifo":
        os.mkfifo(path)
    elif metrics == "zero":
        os.symlink("/dev/zero", path)
    elif metrics == "huge":
        with open(path, "wb") as f:  # sparse: 300 MB that take no disk
            f.truncate(300 * 2**20)
    return run


@pytest.fixture
def hostile(tmp_path):
    root = tmp_path / "runs"
    run_folder(root, "a-good")
    for kind in ("fifo", "zero", "huge"):
        run_folder(root, f"b-{kind}", kind)
    bad = run_folder(root, "c-files")
    (bad / "env.json").unlink()
    os.mkfifo(bad / "env.json")
    (bad / "config.yaml").unlink()
    os.symlink("/dev/zero", bad / "config.yaml")
    return root


def test_runs_lists_every_run_and_names_the_unreadable_files(hostile):
    r = run_cli("runs", hostile, "--json", timeout=60)  # a hang fails here
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    rows = {row["run"]: row for row in json.loads(r.stdout)}
    assert rows["exp/a-good"]["status"] == "finished"
    assert rows["exp/c-files"]["status"] == "finished"  # its metrics are fine
    for kind in ("fifo", "zero", "huge"):
        assert rows[f"exp/b-{kind}"]["status"] == "unreadable"
    text = " ".join(r.stderr.split())
    assert "b-fifo/metrics.jsonl" in text and "not a regular file (a FIFO)" in text
    assert "b-zero/metrics.jsonl" in text and "(a character device)" in text
    assert "b-huge/metrics.jsonl" in text and "larger than" in text
    assert "c-files/env.json" in text and "c-files/config.yaml" in text


@pytest.mark.parametrize("kind,message", [("fifo", "not a regular file (a FIFO)"),
                                          ("zero", "not a regular file (a character device)"),
                                          ("huge", "larger than 256 MiB")])
def test_plot_refuses_a_metrics_file_it_cannot_read(tmp_path, kind, message):
    run = run_folder(tmp_path / "runs", "r", kind)
    r = run_cli("plot", run, "-o", tmp_path / "p.png", timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    text = " ".join(r.stderr.split())
    assert str(run / "metrics.jsonl") in text and message in text
    assert not (tmp_path / "p.png").exists()


def test_plot_reads_a_good_run(tmp_path):
    run = run_folder(tmp_path / "runs", "r")
    r = run_cli("plot", run, "-o", tmp_path / "p.png", timeout=60)
    assert r.returncode == 0, r.stderr
