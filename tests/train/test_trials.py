"""Sweep workers end to end (`archspec sweep FILE --workers 2`, `--worker`): every trial is
trained once, its run folder is complete, the study's best is the best run; a worker killed
with SIGKILL mid-trial leaves it to the next worker, which resumes it; ASHA prunes a clearly
bad trial of the digits MLP. Slow: each trains several small runs in worker processes."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
import yaml

from helpers import ARCHSPEC, ROOT, read_records, run_cli
from postgres import postgres_server, postgres_url  # noqa: F401 - fixtures

LOGISTIC = ROOT / "experiments" / "digits_logistic.yaml"
MLP = ROOT / "experiments" / "digits_mlp.yaml"


def sweep_file(tmp_path, name, experiment=LOGISTIC, **keys):
    data = {"name": name, "experiment": str(experiment), **keys}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def study_of(folder, storage=None):
    import optuna

    from archspec.experiment.storage import open_storage, place_of

    place = place_of(storage, folder)
    return optuna.load_study(study_name=folder.name, storage=open_storage(place))


def best_val(run_dir) -> float:
    """The run's best validation accuracy, from its metrics.jsonl."""
    return max(r["accuracy_classes"] for r in read_records(run_dir) if r["split"] == "val")


def assert_complete(run_dir):
    """A run folder as a finished training leaves it."""
    for name in ("config.yaml", "architecture.yaml", "metrics.jsonl", "best.json"):
        assert (run_dir / name).exists(), f"{run_dir}/{name}"
    for which in ("best", "latest"):
        assert any(p.name.isdigit() for p in (run_dir / "checkpoints" / which).iterdir())
    records = read_records(run_dir)
    assert records[-1]["split"] == "summary" and records[-1]["status"] == "finished"
    assert any(r["split"] == "test" for r in records)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["journal", "postgresql"])
def test_two_workers_train_eight_trials_once(tmp_path, request, where):
    storage = request.getfixturevalue("postgres_url") if where == "postgresql" else None
    file = sweep_file(tmp_path, "seeds", set={"epochs": 1}, search="random", trials=8, seed=1,
                      random={"seed": {"int": [0, 100000]}})
    out = tmp_path / "out"
    flags = ["--output", out] + (["--storage", storage] if storage else [])
    r = run_cli("sweep", file, "--workers", "2", *flags, timeout=900)
    logs = [(out / "seeds" / "workers" / f"worker-{k}.log").read_text() for k in range(2)]
    assert r.returncode == 0, r.stdout[-3000:] + "\n".join(logs)
    ran = [sorted(int(n) for n in re.findall(r"trial (\d+) trained: complete", log))
           for log in logs]
    assert ran[0] and ran[1], "both workers trained"
    assert sorted(ran[0] + ran[1]) == list(range(8))           # every trial once, no duplicate
    study = study_of(out / "seeds", storage)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(8))
    assert {t.state.name for t in trials} == {"COMPLETE"}
    for t in trials:
        run_dir = out / "seeds" / t.user_attrs["run"]
        assert_complete(run_dir)
        assert t.value == pytest.approx(best_val(run_dir), abs=1e-12)
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["seed"] == t.params["seed"] and config["epochs"] == 1
    rows = json.loads(run_cli("runs", out / "seeds", "--sort", "val", "--json").stdout)
    assert len(rows) == 8 and rows[0]["best_val"] == pytest.approx(study.best_value, abs=1e-12)
    assert best_val(out / "seeds" / rows[0]["run"]) == pytest.approx(study.best_value, abs=1e-12)
    summary = run_cli("sweep", file, "--summary", *flags)
    assert summary.returncode == 0 and "8 trials: 8 complete" in summary.stdout, summary.stdout


def _start_worker(file, out, log):
    return subprocess.Popen([*ARCHSPEC, "sweep", str(file), "--worker", "--output", str(out)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "COLUMNS": "120"})


@pytest.mark.slow
def test_a_killed_workers_trial_is_resumed_by_the_next_worker(tmp_path):
    file = sweep_file(tmp_path, "kill", set={"epochs": 6, "checkpoint": {"every_steps": 5}},
                      search="random", trials=2, random={"seed": {"int": [0, 1000]}})
    out, run0 = tmp_path / "out", tmp_path / "out" / "kill" / "t0000"
    with open(tmp_path / "first.log", "w") as log:
        first = _start_worker(file, out, log)
        deadline = time.time() + 600
        while not any(r["split"] == "val" and r["epoch"] >= 2 for r in read_records(run0)):
            assert first.poll() is None and time.time() < deadline, \
                (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait()
    killed_at = max(r["epoch"] for r in read_records(run0) if r["split"] == "train")
    assert killed_at < 6 and read_records(run0)[-1]["split"] != "summary"
    second = run_cli("sweep", file, "--worker", "--output", out, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "trial 0 (its worker died: taken over)" in second.stdout
    assert "trial 0 resumed: complete" in second.stdout and "trial 1 trained: complete" in second.stdout
    trials = study_of(out / "kill").get_trials()
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE")]
    assert_complete(run0)
    records = read_records(run0)
    assert [r["epoch"] for r in records if r["split"] == "val"][-6:] == [1, 2, 3, 4, 5, 6]
    epochs = [r["epoch"] for r in records if r["split"] == "train"]
    assert epochs == sorted(epochs) and epochs[-1] == 6   # resumed, not started over
    assert len(json.loads((run0 / "attempts.json").read_text())) == 1


@pytest.mark.slow
def test_asha_prunes_a_clearly_bad_trial(tmp_path):
    """Trial 3 (lr 10) is far below the three trials before it at epoch 1: pruned there. The
    health checks are relaxed so that the bad trial trains on, for the pruner to judge."""
    out = tmp_path / "out"   # in the file: `check` finds the runs there
    file = sweep_file(tmp_path, "asha", experiment=MLP, seed=0, output=str(out),
                      set={"epochs": 3, "health.explode_factor": 1.0e12,
                           "health.collapse_steps": 100000, "health.max_nonfinite": 100000},
                      pruner={"name": "asha", "min_trials": 3},
                      grid={"optimizer.lr": [0.002, 0.003, 0.005, 10.0]})
    r = run_cli("sweep", file, "--worker", timeout=900)
    assert r.returncode == 0, r.stdout[-3000:]
    trials = study_of(out / "asha").get_trials()
    states = {t.params["optimizer.lr"]: t.state.name for t in trials}
    assert states[10.0] == "PRUNED" and len(trials) == 4, states
    assert {t.user_attrs["epochs"] for t in trials} == {3}   # the last rung is the run's end
    bad = next(t for t in trials if t.params["optimizer.lr"] == 10.0)
    why = bad.user_attrs["pruned_because"]
    assert why.startswith("asha at epoch 1: val.accuracy") and "against 3 other trials" in why
    run_dir = out / "asha" / bad.user_attrs["run"]
    summary = read_records(run_dir)[-1]
    assert summary["status"] == "pruned" and summary["pruned_because"] == why
    assert (run_dir / "checkpoints" / "latest").is_dir()
    rows = json.loads(run_cli("runs", out / "asha", "--json").stdout)
    assert {row["run"]: row["status"] for row in rows}[bad.user_attrs["run"]] == "pruned"
    check = run_cli("check", file, "--output", tmp_path / "check")
    assert check.returncode == 0 and "1 pruned" in check.stdout, check.stdout
    table = run_cli("sweep", file, "--summary", "--storage", out / "asha" / "study.journal")
    assert "pruned" in table.stdout and "asha at epoch 1" in table.stdout
