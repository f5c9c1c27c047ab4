"""`archspec sweep FILE --summary`, `--parallel-hint` and `--point` on a search, and `archspec
plot` of its folder, on a study whose trials are made without training (each fake trial
writes the run folder a training would)."""
from __future__ import annotations

import json
import math

import pytest
import yaml

from helpers import ROOT, run_cli

EXPERIMENT = ROOT / "experiments" / "digits_logistic.yaml"


def fake_run(folder, value: float, status: str):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"step": 1, "epoch": 1, "split": "train", "loss": 1.0, "accuracy_classes": 0.5},
             {"step": 1, "epoch": 1, "split": "val", "loss": 1 - value, "accuracy_classes": value},
             {"step": 1, "split": "summary", "status": status,
              **({"pruned_because": "median at epoch 1: too low"} if status == "pruned" else {})}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Six trials of a random search: five complete (value from the learning rate), trial 4
    pruned. Returns (sweep file, output folder, {trial number: value})."""
    from archspec.experiment.storage import place_of
    from archspec.experiment.study import claim, open_study, tell
    from archspec.experiment.sweep import load_sweep

    tmp = tmp_path_factory.mktemp("study")
    file = tmp / "lrs.yaml"
    file.write_text(yaml.safe_dump({
        "name": "lrs", "experiment": str(EXPERIMENT), "set": {"epochs": 1},
        "search": "random", "trials": 6, "seed": 2,
        "random": {"optimizer.lr": {"loguniform": [1e-4, 1e-1]},
                   "batch_size": {"int": [16, 64]}}}, sort_keys=False))
    sw = load_sweep(file, str(tmp / "out"))
    h = open_study(sw, place_of(None, sw.folder), "val.accuracy", "maximize")
    values = {}
    while (c := claim(h)) is not None:
        value = round(0.9 + 0.01 * math.log10(c.varying["optimizer.lr"]), 6)
        fake_run(sw.folder / c.folder, value, "pruned" if c.number == 4 else "finished")
        tell(h, c, sw.folder / c.folder)
        h.locks.release(c.number)
        values[c.number] = value
    h.close()
    return file, tmp / "out", values


def test_summary_reads_the_study(study):
    file, out, values = study
    r = run_cli("sweep", file, "--output", out, "--summary", env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "6 trials: 5 complete, 1 pruned" in r.stdout
    complete = {n: v for n, v in values.items() if n != 4}
    best = max(complete, key=complete.get)
    assert f"best    trial {best}: val.accuracy {complete[best]!r}" in r.stdout
    rows = [line for line in r.stdout.splitlines() if line.startswith("│")]
    numbers = [int(line.split("│")[1]) for line in rows]
    ranked = sorted(complete, key=complete.get, reverse=True)
    assert numbers == ranked + [4]             # best first; the pruned trial after them
    assert all(repr(v) in r.stdout for v in complete.values())   # every digit shown
    assert "median at epoch 1: too low" in r.stdout


def test_plot_of_a_sweep_draws_its_study(study, tmp_path):
    file, out, _ = study
    r = run_cli("plot", out / "lrs", "-o", tmp_path / "curves.png")
    assert r.returncode == 0, r.stderr
    for name in ("curves.png", "curves-lrs-history.png", "curves-lrs-importance.png",
                 "curves-lrs-parallel.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    assert "fANOVA importance" in " ".join(r.stdout.split())
    from archspec.viz.plot import load_curves   # each trial's curves, labelled

    labels = [load_curves(out / "lrs" / f"t000{n}").label for n in range(6)]
    assert labels[0].startswith("lrs/t0000 (optimizer.lr=") and "batch_size=" in labels[0]
    assert labels[4].endswith("[pruned]")


def test_search_refuses_point_and_hints_workers(study, tmp_path):
    file, out, _ = study
    r = run_cli("sweep", file, "--output", out, "--point", "1")
    assert r.returncode == 2 and "--worker or --workers N" in r.stderr
    hint = run_cli("sweep", file, "--output", tmp_path / "none", "--parallel-hint")
    assert hint.returncode == 0, hint.stderr
    assert "--workers 4" in hint.stdout and "--worker --storage postgresql://" in hint.stdout
    assert not (tmp_path / "none").exists()
    both = run_cli("sweep", file, "--output", out, "--worker", "--workers", "2")
    assert both.returncode == 2 and "use one" in both.stderr


def test_workers_share_out_the_visible_gpus(monkeypatch):
    from archspec.commands import sweep_study

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert sweep_study.split_devices(2) == ["0,1", "2,3"]
    assert sweep_study.split_devices(3) == ["0", "1", "2"]     # one each; the fourth is left
    assert sweep_study.split_devices(6) == ["0", "1", "2", "3", "0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(sweep_study, "_nvidia_ids", lambda: [])
    assert sweep_study.split_devices(2) == [None, None]        # CPU: nothing to choose
