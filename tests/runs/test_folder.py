"""Run folders to trust: config.yaml re-runs from anywhere, moved or changed data is named,
names and links never lead outside the folder, a leftover ARCHSPEC_RUN_NAME never reuses an
old run, damaged checkpoints and run files are found and reported without a traceback."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import ROOT, only_run, read_records, run_cli

ARCH = """name: tiny
input: {shape: [2]}
layers:
  - dense: {units: 8, activation: tanh, name: hidden}
  - dense: {units: 2, activation: linear, name: logits}
heads: {label: {from: logits, output: softmax}}
"""
# 2 epochs of 9 steps (140 train rows, batch 16); checkpoints at 4, 8, 9, 12, 16, 18, of
# which the newest two stay: 16 (mid-epoch 2) and 18.
EXPERIMENT = """name: tiny
architecture: arch.yaml
data: {name: csv, path: table.csv, val_fraction: 0.1, test_fraction: 0.2}
optimizer: {name: adam, lr: 0.05}
epochs: 2
batch_size: 16
checkpoint: {every_steps: 4}
eval_splits: [val]
"""


def _project(folder: Path) -> Path:
    """An experiment file with relative paths to its architecture and its data."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    rows = [f"{a:.4f},{b:.4f},{int(a > b)}" for a, b in x]
    (folder / "table.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    (folder / "arch.yaml").write_text(ARCH)
    (folder / "exp.yaml").write_text(EXPERIMENT)
    return folder / "exp.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(project folder, run folder) of a finished run trained with relative paths."""
    project = tmp_path_factory.mktemp("project")
    _project(project)
    r = run_cli("train", "exp.yaml", "--output", "runs", cwd=project)
    assert r.returncode == 0, r.stderr + r.stdout
    return project, only_run(project / "runs")


@pytest.fixture
def elsewhere(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def _copy(run: Path, dest: Path, epochs: int | None = None) -> Path:
    """A copy of a run; with `epochs`, one that has training left to do."""
    shutil.copytree(run, dest, symlinks=True)
    if epochs is not None:
        cfg = dest / "config.yaml"
        cfg.write_text(cfg.read_text().replace("epochs: 2", f"epochs: {epochs}"))
    return dest


def _steps(run: Path, which: str = "latest") -> list[int]:
    return sorted(int(p.name) for p in (run / "checkpoints" / which).iterdir() if p.name.isdigit())


# --------------------------------------------------------------- 1. re-runs from anywhere

def test_config_of_a_run_reruns_from_any_folder(trained, elsewhere):
    project, run = trained
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["architecture"] == "architecture.yaml"
    assert (run / "architecture.yaml").read_text() == ARCH
    assert cfg["data"]["path"] == str(project / "table.csv")
    assert Path(cfg["output"]).is_absolute()
    sources = json.loads((run / "sources.json").read_text())
    (entry,) = sources["data"]
    data = (project / "table.csv").read_bytes()
    assert entry == {"key": "data.path", "path": str(project / "table.csv"), "size": len(data),
                     "sha256": hashlib.sha256(data).hexdigest()}

    r = run_cli("eval", run, "--json", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["metrics"]["examples"] == 40
    (elsewhere / "new.csv").write_text("a,b\n0.5,-0.5\n-0.5,0.5\n")
    r = run_cli("predict", run, "new.csv", "--json", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    r = run_cli("train", run / "config.yaml", "--steps", "2", "--output", elsewhere / "again",
                cwd=elsewhere)
    assert r.returncode == 0, r.stderr + r.stdout
    again = only_run(elsewhere / "again")
    assert (again / "architecture.yaml").read_text() == ARCH
    assert "warning" not in r.stderr


# --------------------------------------------------------------- 2. resume

def test_resume_from_another_folder_names_changed_data(trained, tmp_path, elsewhere):
    project, run = trained
    run = _copy(run, tmp_path / "run", epochs=3)
    data = tmp_path / "moved.csv"
    shutil.copy(project / "table.csv", data)
    for name in ("config.yaml", "sources.json"):  # as if trained on moved.csv
        p = run / name
        p.write_text(p.read_text().replace(str(project / "table.csv"), str(data)))
    with open(data, "a") as f:
        f.write("0.1,0.2,0\n")
    r = run_cli("train", "--resume", run, cwd=elsewhere)
    assert r.returncode == 0, r.stderr + r.stdout
    err = " ".join(r.stderr.split())
    assert f"warning: data file {data} (data.path) changed since this run started" in err
    assert "Traceback" not in r.stderr
    assert [m["epoch"] for m in read_records(run) if m["split"] == "train"] == [1, 2, 3]

    data.unlink()
    r = run_cli("eval", run, cwd=elsewhere)
    assert r.returncode == 2
    err = " ".join(r.stderr.split())
    assert f"data file {data} (data.path) is gone: moved or deleted" in err
    assert "CSV file not found" in err and "Traceback" not in r.stderr


def test_a_changed_experiment_file_is_named(tmp_path):
    from archspec.runs.sources import changed_sources, write_setup

    exp = tmp_path / "exp.yaml"
    exp.write_text("name: x\n")
    run = tmp_path / "run"
    run.mkdir()
    write_setup(run, {"name": "x", "architecture": "a.yaml", "data": {"name": "digits"}},
                ARCH, 0, experiment_file=exp)
    assert changed_sources(run) == []
    exp.write_text("name: y\n")
    assert changed_sources(run) == [f"experiment file {exp} changed since this run started "
                                    "(same size, other contents)"]


def test_resuming_a_finished_run_does_nothing_and_says_so(trained, tmp_path):
    run = _copy(trained[1], tmp_path / "run")
    before = (run / "metrics.jsonl").read_text()
    r = run_cli("train", "--resume", run)
    assert r.returncode == 0, r.stderr
    assert f"{run} already finished: all 18 steps done (checkpoint 18); nothing to resume" \
        in " ".join(r.stdout.split())
    assert (run / "metrics.jsonl").read_text() == before


def test_an_epoch_resumed_mid_way_is_marked_partial(trained, tmp_path):
    run = _copy(trained[1], tmp_path / "run")
    assert _steps(run) == [16, 18]
    shutil.rmtree(run / "checkpoints" / "latest" / "18")  # as if killed at step 16
    r = run_cli("train", "--resume", run)
    assert r.returncode == 0, r.stderr + r.stdout
    train = [m for m in read_records(run) if m["split"] == "train"]
    assert [m["epoch"] for m in train] == [1, 2]
    assert "partial" not in train[0] and train[1]["partial"] is True


def test_metrics_of_an_epoch_stopped_and_resumed_are_both_partial(tmp_path):
    from archspec.runs.records import MetricsLog, read_metrics

    log = MetricsLog(tmp_path, tensorboard=False)
    log.log({"step": 9, "epoch": 1, "split": "train", "loss": 1.0})
    log.log({"step": 12, "epoch": 2, "split": "train", "loss": 0.9})  # stopped at step 12
    log.log({"step": 12, "split": "summary", "status": "stopped"})
    log = MetricsLog(tmp_path, tensorboard=False)
    log.truncate_after(12)
    log.log({"step": 18, "epoch": 2, "split": "train", "loss": 0.8})
    train = [r for r in read_metrics(tmp_path) if r["split"] == "train"]
    assert [r.get("partial", False) for r in train] == [False, True, True]
    log = MetricsLog(tmp_path, tensorboard=False)  # resumed at an epoch's end: complete
    log.truncate_after(18)
    log.log({"step": 27, "epoch": 3, "split": "train", "loss": 0.7})
    assert "partial" not in read_metrics(tmp_path)[-1]


# --------------------------------------------------------------- 3. names and links

@pytest.mark.parametrize("name", ["../escaped", "/tmp/absolute", "a/b"])
def test_a_name_never_places_a_run_outside_output(tmp_path, name):
    exp = _project(tmp_path / "p")
    r = run_cli("train", exp, "--set", f"name={name}", "--output", tmp_path / "runs")
    assert r.returncode == 2, r.stderr + r.stdout
    err = " ".join(r.stderr.split())
    assert f"--set name={name}" in err and "bad value for 'name'" in err
    assert "one folder name under `output`" in err and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "escaped").exists()


@pytest.mark.parametrize("name,problem", [("a\nb", "'\\n'"), ("tab\there", "'\\t'"),
                                          ("bell\x07", "'\\x07'"), ("del\x7f", "'\\x7f'")])
def test_a_name_with_a_control_character_is_refused_before_training(tmp_path, name, problem):
    """Before: `name: "a\\nb"` made a run folder with a newline in its name."""
    from archspec.experiment import load as experiment
    from archspec.errors import SpecErrors

    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: {json.dumps(name)}\narchitecture: {ROOT}/architectures/"
                   "logistic_regression.yaml\ndata: {name: digits}\n")
    with pytest.raises(SpecErrors) as info:
        experiment.load(exp, [])
    (error,) = info.value.errors
    assert error.pos.line == 1 and "bad value for 'name'" in error.message
    assert f"contains a control character ({problem})" in error.expected


@pytest.mark.parametrize("name", ["..", "../x", "/abs", "a\\b", ""])
def test_new_run_dir_refuses_names_that_leave_output(tmp_path, name):
    from archspec.runs.files import RunFolderError
    from archspec.runs.folder import new_run_dir

    with pytest.raises(RunFolderError, match="a run must stay inside"):
        new_run_dir(str(tmp_path / "runs"), name)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("target", ["metrics.jsonl", "best.json", "attempts.json", "checkpoints"])
def test_run_files_are_never_written_through_a_link(trained, tmp_path, target):
    run = _copy(trained[1], tmp_path / "run", epochs=3)
    victim = tmp_path / "victim"
    if target == "checkpoints":
        shutil.move(run / target, victim)
        before = sorted(str(p.relative_to(victim)) for p in victim.rglob("*"))
    else:
        victim.write_text("precious\n")
        (run / target).unlink()
        before = None
    os.symlink(victim, run / target)
    r = run_cli("train", "--resume", run)
    assert r.returncode == 1, r.stderr + r.stdout
    err = " ".join(r.stderr.split())
    assert f"refusing to write {run / target}: it is a symbolic link (to {victim})" in err
    assert "Traceback" not in r.stderr
    if before is None:
        assert victim.read_text() == "precious\n"
    else:
        assert sorted(str(p.relative_to(victim)) for p in victim.rglob("*")) == before


def test_atomic_writes_refuse_links_and_keep_the_target(tmp_path):
    from archspec.runs.files import RunFolderError
    from archspec.runs.records import write_best

    victim = tmp_path / "victim.json"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(victim, run / "best.json")
    with pytest.raises(RunFolderError, match="symbolic link"):
        write_best(run, (0.5, -1.0), 3)
    assert victim.read_text() == "precious" and (run / "best.json").is_symlink()


# --------------------------------------------------------------- 4. ARCHSPEC_RUN_NAME

def test_leftover_run_name_never_reuses_a_run(trained, tmp_path):
    project, run = trained
    before = (run / "metrics.jsonl").read_text()
    r = run_cli("train", "exp.yaml", "--output", "runs", cwd=project,
                env={"ARCHSPEC_RUN_NAME": run.name})
    assert r.returncode == 1, r.stderr + r.stdout
    err = " ".join(r.stderr.split())
    assert f"the run folder runs/tiny/{run.name} named by ARCHSPEC_RUN_NAME={run.name} " \
           "already exists; a new training never reuses a run folder" in err
    assert "archspec train --resume" in err and "Traceback" not in r.stderr
    assert (run / "metrics.jsonl").read_text() == before


def test_processes_of_one_launch_share_a_fresh_folder_only(tmp_path, monkeypatch):
    from archspec.runs import folder as runs
    from archspec.runs.files import RunFolderError
    from archspec.runs.folder import new_run_dir

    monkeypatch.setenv("ARCHSPEC_RUN_NAME", "exp1")
    monkeypatch.setenv("ARCHSPEC_LAUNCH_ID", "launch-a")
    monkeypatch.setattr(runs, "_process_count", lambda: 2)
    first = new_run_dir(str(tmp_path), "e")
    assert json.loads((first / "launch.json").read_text())["launch"].startswith(
        "ARCHSPEC_LAUNCH_ID=launch-a")
    assert new_run_dir(str(tmp_path), "e") == first  # a peer of the same launch joins
    monkeypatch.setenv("ARCHSPEC_LAUNCH_ID", "launch-b")
    with pytest.raises(RunFolderError, match="belongs to another launch"):
        new_run_dir(str(tmp_path), "e")
    monkeypatch.setenv("ARCHSPEC_LAUNCH_ID", "launch-a")
    (first / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(RunFolderError, match="already holds training results"):
        new_run_dir(str(tmp_path), "e")
    monkeypatch.setattr(runs, "_process_count", lambda: 1)
    (first / "metrics.jsonl").unlink()
    with pytest.raises(RunFolderError, match="already exists"):
        new_run_dir(str(tmp_path), "e")


# --------------------------------------------------------------- 5. checkpoint checksums

def test_flipped_bytes_in_the_newest_checkpoint_fall_back_to_the_previous(trained, tmp_path):
    run = _copy(trained[1], tmp_path / "run")
    newest = run / "checkpoints" / "latest" / "18"
    data = max((f for f in newest.rglob("*") if f.is_file() and "/d/" in f.as_posix()),
               key=lambda f: f.stat().st_size)
    raw = bytearray(data.read_bytes())
    for i in (len(raw) // 3, len(raw) // 2, 2 * len(raw) // 3):
        raw[i] ^= 0xFF
    data.write_bytes(bytes(raw))
    r = run_cli("eval", run, "--checkpoint", "latest", "--json")
    assert r.returncode == 0, r.stderr
    err = " ".join(r.stderr.split() + r.stdout.split())
    assert f"checkpoint 18 cannot be read (checkpoint 18 in {run} cannot be read: file " \
           f"{data.relative_to(newest).as_posix()} does not match its checksum); using " \
           "checkpoint 16" in err
    assert json.loads(r.stdout[r.stdout.index("{"):])["step"] == 16


def test_manifest_lists_every_file_and_finds_a_change(tmp_path):
    from archspec.runs.checksums import MANIFEST, verify, write_manifest

    step = tmp_path / "7"
    (step / "default" / "d").mkdir(parents=True)
    (step / "default" / "d" / "blob").write_bytes(b"\x01\x02\x03")
    (step / "_CHECKPOINT_METADATA").write_text("{}")
    write_manifest(step)
    # orbax rewrites the step's _CHECKPOINT_METADATA as it commits, after the list is written
    assert (step / MANIFEST).read_text().split() == [
        hashlib.sha256(b"\x01\x02\x03").hexdigest(), "default/d/blob"]
    assert verify(step) is None
    (step / "default" / "d" / "blob").write_bytes(b"\x01\x02\x04")
    assert verify(step) == "file default/d/blob does not match its checksum"
    (step / "default" / "d" / "blob").unlink()
    assert verify(step) == "file default/d/blob is missing"
    (step / MANIFEST).write_bytes(b"\xff\x00")
    assert verify(step) == "its checksum list is damaged"


# --------------------------------------------------------------- 6. damaged run files

def test_damaged_metrics_and_best_are_recovered_with_a_warning(trained, tmp_path):
    run = _copy(trained[1], tmp_path / "run", epochs=3)
    lines = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    (run / "metrics.jsonl").write_bytes(lines[0] + b"\xff\xfe{not json\n" + b"".join(lines[1:]))
    best = json.loads((run / "best.json").read_text())
    (run / "best.json").write_text('{"score": 0.9')  # cut short
    r = run_cli("train", "--resume", run)
    assert r.returncode == 0, r.stderr + r.stdout
    err = " ".join(r.stderr.split())
    assert f"warning: {run / 'metrics.jsonl'}: 1 damaged line dropped (line 2)" in err
    assert f"warning: {run / 'best.json'} is damaged (not JSON" in err
    assert f"using the score {best['score']:g} of the best checkpoint's validation record" in err
    assert "Traceback" not in r.stderr
    assert [m["epoch"] for m in read_records(run) if m["split"] == "train"] == [1, 2, 3]


def test_damaged_attempts_is_a_clear_error(trained, tmp_path):
    run = _copy(trained[1], tmp_path / "run", epochs=3)
    (run / "attempts.json").write_text('[{"attempt": 0, "outc')
    r = run_cli("train", "--resume", run)
    assert r.returncode == 1, r.stderr + r.stdout
    err = " ".join(r.stderr.split())
    assert f"error: {run / 'attempts.json'} is damaged (not JSON" in err
    assert "delete it to continue as the first attempt" in err and "Traceback" not in r.stderr


def test_run_file_readers_never_raise_on_damage(tmp_path):
    from archspec.runs.files import RunFolderError
    from archspec.runs.records import read_attempts, read_best, read_metrics

    (tmp_path / "metrics.jsonl").write_bytes(b'{"step": 1}\n5\n{"step": null}\n\xff\n{"st')
    assert read_metrics(tmp_path) == [{"step": 1}]
    for text in ("", "{}", "[1, 2]", '{"attempt": 0}', "\xff"):
        (tmp_path / "attempts.json").write_text(text)
        with pytest.raises(RunFolderError, match="is damaged"):
            read_attempts(tmp_path)
    (tmp_path / "attempts.json").write_text('[{"attempt": 0, "outcome": "diverged"}]')
    assert len(read_attempts(tmp_path)) == 1
    (tmp_path / "best.json").write_text('{"score": "high"}')
    assert read_best(tmp_path) is None  # nothing to rebuild from: a warning, no guess


def _tensorboard(run: Path) -> tuple[dict, dict]:
    """(scalars: tag -> {step: value}, texts: tag -> text) of a run's events files, read
    record by record (TFRecord framing: length, crc, event, crc)."""
    import struct

    from tensorboardX.proto import event_pb2

    scalars, texts = {}, {}
    for f in sorted((run / "events").iterdir()):
        data, i = f.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    scalars.setdefault(v.tag, {})[event.step] = v.simple_value
                elif v.HasField("tensor") and v.tensor.string_val:
                    texts[v.tag] = v.tensor.string_val[0].decode()
    return scalars, texts


def test_tensorboard_gets_test_metrics_per_layer_health_lr_per_step_and_the_architecture(tmp_path):
    r = run_cli("train", ROOT / "experiments/digits_logistic.yaml", "--epochs", "2",
                "--set", "optimizer.schedule.name=cosine", "--output", tmp_path)
    assert r.returncode == 0, r.stderr
    run = only_run(tmp_path)
    scalars, texts = _tensorboard(run)
    records = read_records(run)
    test = next(m for m in records if m["split"] == "test")
    assert scalars["test/loss"][test["step"]] == pytest.approx(test["loss"], rel=1e-6)
    train = [m for m in records if m["split"] == "train"]
    total = train[-1]["step"]
    lr = scalars["train/lr_per_step"]
    assert sorted(lr) == list(range(1, total + 1))  # every step, once
    assert lr[total] == pytest.approx(train[-1]["lr"], rel=1e-5)
    assert lr[1] > lr[total]  # cosine decays
    for layer, norm in train[-1]["grad_norms"].items():
        assert scalars[f"train/grad_norms/{layer}"][total] == pytest.approx(norm, rel=1e-6)
    assert "layers:" in texts["architecture/text_summary"]


def test_a_constant_learning_rate_is_written_where_it_changes_and_at_each_epochs_end(tmp_path):
    """TensorBoard's per-step rate: a step is written where the value changes and at the
    end of each batch of steps, so the curve TensorBoard draws is the same, from a handful
    of points instead of one per step."""
    from archspec.runs.records import MetricsLog

    log = MetricsLog(tmp_path)
    log.per_step("lr", [0.1] * 5, 1)             # steps 1-5
    log.per_step("lr", [0.1] * 3 + [0.01] * 2, 6)  # steps 6-10: drops at step 9
    log.per_step("lr", [0.01] * 4, 11)           # steps 11-14
    log.close()
    scalars, _ = _tensorboard(tmp_path)
    assert scalars["lr"] == pytest.approx({1: 0.1, 5: 0.1, 9: 0.01, 10: 0.01, 14: 0.01})
