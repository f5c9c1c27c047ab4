"""The runs table, sweeps (points, ids, resuming, single points) and optional tracking."""
from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from helpers import ROOT, run_cli

EXPERIMENT = ROOT / "experiments" / "digits_logistic.yaml"


def fake_run(root, experiment, stamp, status=None, epochs=2, acc=0.5, started=None):
    """A run folder as the trainer leaves it; status None: no summary (killed)."""
    d = root / experiment / stamp
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"name": experiment, "epochs": epochs}))
    (d / "architecture.yaml").write_text("name: x\n")
    (d / "env.json").write_text(json.dumps({"started": started or "2025-01-01T10:00:00"}))
    lines = []
    for e in range(1, epochs + 1):
        lines.append({"step": e, "epoch": e, "split": "train", "loss": 1.0 / e,
                      "accuracy_digits": acc, "examples_per_s": 100.0 * e})
        lines.append({"step": e, "epoch": e, "split": "val", "loss": 1.0 / e,
                      "accuracy_digits": acc + 0.01 * e})
    if status:
        lines.append({"step": epochs, "split": "test", "loss": 0.5, "accuracy_digits": acc})
        lines.append({"step": epochs, "split": "summary", "seconds": 1.0,
                      "examples_per_s": 123.0, "status": status})
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return d


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """One real run (logistic regression, 2 epochs) and three made-up ones."""
    out = tmp_path_factory.mktemp("runs")
    r = run_cli("train", EXPERIMENT, "--epochs", "2", "--output", out)
    assert r.returncode == 0, r.stderr[-3000:]
    fake_run(out, "digits_mlp", "20250101-100000", "stopped", epochs=1, acc=0.7,
             started="2025-01-01T10:00:00")
    fake_run(out, "digits_mlp", "20250102-100000", "collapsed", epochs=3, acc=0.1,
             started="2025-01-02T10:00:00")
    fake_run(out, "digits_lenet", "20250103-100000", None, epochs=1, acc=0.985,
             started="2025-01-03T10:00:00")
    return out


# --- runs ------------------------------------------------------------------------------------
def test_runs_table_lists_every_run_with_its_status(runs_dir):
    r = run_cli("runs", runs_dir)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "4 runs" in out
    for text in ("digits_logistic/", "digits_mlp/20250101-100000", "finished", "stopped",
                 "collapsed", "running/killed", "2/2"):
        assert text in out, text


def test_runs_json_sorted_by_validation_metric(runs_dir):
    r = run_cli("runs", runs_dir, "--sort", "val", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows[0]["status"] == "running/killed"   # 99.5% val: best first
    vals = [row["best_val"] for row in rows]
    assert vals == sorted(vals, reverse=True)
    real = next(row for row in rows if row["experiment"] == "digits_logistic")
    assert real["status"] == "finished" and real["epochs"] == 2 and real["planned_epochs"] == 2
    assert real["val_metric"] == "accuracy_classes" and 0 < real["test"] <= 1
    assert real["examples_per_s"] > 0
    killed = next(row for row in rows if row["status"] == "running/killed")
    assert killed["test"] is None and killed["examples_per_s"] == 100.0
    by_date = json.loads(run_cli("runs", runs_dir, "--json").stdout)
    assert [row["date"] for row in by_date] == sorted(row["date"] for row in by_date)


def test_runs_bad_sort_key(runs_dir):
    r = run_cli("runs", runs_dir, "--sort", "tset")
    assert r.returncode == 2 and "did you mean 'test'" in r.stderr


# --- sweeps ----------------------------------------------------------------------------------
def write_sweep(path, **extra):
    data = {"name": "lr", "experiment": str(EXPERIMENT), "set": {"epochs": 1},
            "grid": {"optimizer.lr": [0.01, 0.05]}, **extra}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_sweep_runs_every_point_then_resumes_nothing(tmp_path):
    from archspec.experiment.sweep import load_sweep

    file = write_sweep(tmp_path / "lr.yaml")
    out = tmp_path / "out"
    r = run_cli("sweep", file, "--output", out)
    assert r.returncode == 0, r.stderr[-3000:]
    points = load_sweep(file, str(out)).points()
    dirs = sorted(p.name for p in (out / "lr").iterdir() if p.is_dir())
    assert dirs == sorted(p.id for p in points) and len(dirs) == 2
    for p in points:
        cfg = yaml.safe_load((out / "lr" / p.id / "config.yaml").read_text())
        assert cfg["optimizer"]["lr"] == p.overrides["optimizer.lr"] and cfg["epochs"] == 1
        summary = json.loads((out / "lr" / p.id / "metrics.jsonl").read_text().splitlines()[-1])
        assert summary["status"] == "finished"
    assert "optimizer.lr=0.01" in r.stdout and "optimizer.lr=0.05" in r.stdout
    assert r.stdout.count("finished") >= 2 and "★" in r.stdout
    manifest = json.loads((out / "lr" / "sweep.json").read_text())
    assert [m["id"] for m in manifest["points"]] == [p.id for p in points]

    before = {p: (out / "lr" / p / "metrics.jsonl").stat().st_mtime_ns for p in dirs}
    again = run_cli("sweep", file, "--output", out)
    assert again.returncode == 0, again.stderr
    assert "2 already finished, 0 to run" in again.stdout
    assert {p: (out / "lr" / p / "metrics.jsonl").stat().st_mtime_ns for p in dirs} == before
    # a killed point (no summary record yet) resumes from its checkpoint
    metrics = out / "lr" / points[0].id / "metrics.jsonl"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:-1]))
    one = run_cli("sweep", file, "--output", out, "--point", "0")
    assert one.returncode == 0, one.stderr[-3000:]
    assert "0 already finished, 1 to run" in one.stdout and "resumed" in one.stdout
    assert json.loads(metrics.read_text().splitlines()[-1])["status"] == "finished"
    bad = run_cli("sweep", file, "--output", out, "--point", "2")
    assert bad.returncode == 2 and "0 to 1" in bad.stderr


def test_sweep_parallel_hint_lists_points_and_schedulers(tmp_path):
    file = write_sweep(tmp_path / "lr.yaml", random={"optimizer.weight_decay": {
        "loguniform": [1e-5, 1e-3]}}, samples=2, seed=3)
    r = run_cli("sweep", file, "--output", tmp_path / "out", "--parallel-hint")
    assert r.returncode == 0, r.stderr
    assert "4 points" in r.stdout and "--point $SLURM_ARRAY_TASK_ID" in r.stdout
    assert "::: $(seq 0 3)" in r.stdout and "--array=0-3" in r.stdout
    assert not (tmp_path / "out").exists()     # nothing trained, nothing written


def test_sweep_points_are_stable_and_reproducible(tmp_path):
    from archspec.experiment.sweep import load_sweep, point_id

    spec = {"random": {"optimizer.weight_decay": {"loguniform": [1e-5, 1e-3]},
                       "batch_size": {"choice": [32, 64]},
                       "optimizer.momentum": {"uniform": [0.8, 0.9]}},
            "samples": 3, "seed": 7}
    a = load_sweep(write_sweep(tmp_path / "a.yaml", **spec)).points()
    b = load_sweep(write_sweep(tmp_path / "b.yaml", **spec)).points()
    assert [p.overrides for p in a] == [p.overrides for p in b] and len(a) == 6
    assert len({p.id for p in a}) == 6
    for p in a:
        assert 1e-5 <= p.overrides["optimizer.weight_decay"] <= 1e-3
        assert p.overrides["batch_size"] in (32, 64)
        assert 0.8 <= p.overrides["optimizer.momentum"] <= 0.9
    assert point_id({"x": 1, "y": 2.5}) == point_id({"y": 2.5, "x": 1})
    assert point_id({"x": 1}) != point_id({"x": 2})
    other = load_sweep(write_sweep(tmp_path / "c.yaml", **{**spec, "seed": 8})).points()
    assert [p.overrides for p in other] != [p.overrides for p in a]


def test_sweep_file_errors_are_located(tmp_path):
    file = write_sweep(tmp_path / "bad.yaml", smaples=3,
                       random={"optimizer.lr": {"logunifrom": [1e-4, 1e-2]}})
    r = run_cli("sweep", file)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{file}:" in r.stderr
    assert "did you mean 'samples'" in r.stderr and "did you mean 'loguniform'" in r.stderr


def test_sweep_bad_override_fails_before_training(tmp_path):
    file = tmp_path / "typo.yaml"
    file.write_text(f"experiment: {EXPERIMENT}\ngrid:\n  optimizer.lrr: [0.1, 0.2]\n")
    r = run_cli("sweep", file, "--output", tmp_path / "out")
    assert r.returncode == 2, r.stdout
    assert "lrr" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_example_sweep_file_is_valid():
    from archspec.experiment.sweep import check_points, load_sweep

    sw = load_sweep(ROOT / "sweeps" / "vgg_lr.yaml")
    points = sw.points()
    assert len(points) == 3 and all(p.overrides["epochs"] == 2 for p in points)
    check_points(sw, points)


# --- tracking --------------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None,
                    reason="mlflow is installed here")
def test_track_mlflow_without_mlflow_says_how_to_install(tmp_path):
    r = run_cli("train", EXPERIMENT, "--epochs", "1", "--output", tmp_path, "--track", "mlflow")
    assert r.returncode == 2
    assert "pip install mlflow" in r.stderr and "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())            # refused before training


def test_track_mlflow_logs_to_a_local_file_store(runs_dir, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from archspec.train.tracking import log_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    (run,) = (runs_dir / "digits_logistic").iterdir()
    where = log_run("mlflow", run)
    assert str(tmp_path / "mlruns") in where
    client = mlflow.tracking.MlflowClient()
    exp = client.get_experiment_by_name("digits_logistic")
    (logged,) = client.search_runs([exp.experiment_id])
    assert logged.data.params["optimizer.lr"] == "0.01" and logged.data.params["epochs"] == "2"
    assert "val/loss" in logged.data.metrics and "test/accuracy_classes" in logged.data.metrics
    assert logged.data.tags["archspec.status"] == "finished"
