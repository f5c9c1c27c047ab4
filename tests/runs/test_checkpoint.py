"""A checkpoint's commit under kill -9: the process is killed at each phase of writing the
`latest` checkpoint of step 6 (ARCHSPEC_FAULT_KILL, archspec/runs/checkpoint.py kill_point),
then resumed. A step counts only once it is renamed into place with its checksum list; a
resume verifies the list and falls back to the newest verified step, saying so; damaged or
unverified steps are never loaded."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import ROOT, only_run, read_records, run_cli

EXP = ROOT / "experiments" / "digits_logistic.yaml"
# 20 steps an epoch; `latest` at steps 3, 6, 9, ... (2 kept), `best` after each epoch
ARGS = ["train", EXP, "--epochs", "2", "--set", "checkpoint.every_steps=3",
        "--set", "eval_splits=[val]", "--set", "expect={}"]
TMP = ".orbax-checkpoint-tmp"


def _killed(out: Path, point: str) -> Path:
    r = run_cli(*ARGS, "--output", out, env={"ARCHSPEC_FAULT_KILL": point})
    assert r.returncode == -9, r.stdout[-2000:] + r.stderr[-2000:]  # SIGKILL
    return only_run(out)


def _resume(run: Path):
    r = run_cli("train", "--resume", run)
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    return r


def _steps(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints" / "latest").iterdir())


def _last_val(run: Path) -> dict:
    val = [x for x in read_records(run) if x["split"] == "val"][-1]
    return {k: v for k, v in val.items() if k != "seconds"}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    r = run_cli(*ARGS, "--output", out)
    assert r.returncode == 0, r.stderr
    return only_run(out)


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """A run killed right after step 6 was committed (renamed into place)."""
    return _killed(tmp_path_factory.mktemp("committed"), "committed:latest:6")


# phase: (what may be on disk for step 6 after the kill, the checkpoint the resume continues
# from)
PHASES = {
    "save": ([[]], 3),                           # before orbax starts writing step 6
    # orbax writing in the background: it makes the step's folder on its own thread too
    # (AsyncOptions.create_directories_asynchronously), so a kill just after save() returns
    # may come before the folder exists
    "write": ([[], [f"6{TMP}"]], 3),
    "checksum": ([[f"6{TMP}"]], 3),              # data complete, no checksum list yet
    "rename": ([[f"6{TMP}"]], 3),                # list written, not yet renamed
    "committed": ([["6"]], 6),                   # renamed: committed with its list
}
FAST = ("checksum", "committed")


@pytest.mark.parametrize("phase", [p if p in FAST else pytest.param(p, marks=pytest.mark.slow)
                                   for p in PHASES])
def test_kill_at_each_phase_of_a_checkpoint_then_resume(tmp_path, phase, uninterrupted):
    from archspec.runs.checksums import MANIFEST, verify

    run = _killed(tmp_path, f"{phase}:latest:6")
    on_disk, resumed_from = PHASES[phase]
    assert _steps(run) in [["3", *each] for each in on_disk]
    assert verify(run / "checkpoints" / "latest" / "3") is None
    if phase == "checksum":
        assert not (run / "checkpoints" / "latest" / f"6{TMP}" / MANIFEST).exists()
    if phase == "rename":
        assert (run / "checkpoints" / "latest" / f"6{TMP}" / MANIFEST).is_file()
    r = _resume(run)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"continuing from checkpoint {resumed_from} (its checksums verified)" in r.stdout
    assert not list(run.glob(f"checkpoints/*/*{TMP}*"))            # temporaries cleared
    for step in (run / "checkpoints").glob("*/*"):
        assert verify(step) is None, step                          # every step has its list
    records = read_records(run)
    assert [x["epoch"] for x in records if x["split"] == "train"] == [1, 2]
    assert records[-1]["status"] == "finished"
    assert _last_val(run) == _last_val(uninterrupted)              # nothing lost or changed


def _flip(step: Path) -> Path:
    data = max((f for f in step.rglob("*") if f.is_file() and "/d/" in f.as_posix()),
               key=lambda f: f.stat().st_size)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    return data


def test_flipped_bytes_in_the_newest_checkpoint_after_a_kill_fall_back(tmp_path, committed):
    run = Path(shutil.copytree(committed, tmp_path / "run"))
    newest = run / "checkpoints" / "latest" / "6"
    data = _flip(newest)
    r = _resume(run)
    assert r.returncode == 0, r.stdout + r.stderr
    said = " ".join((r.stdout + r.stderr).split())
    assert f"file {data.relative_to(newest).as_posix()} does not match its checksum); " \
           "using checkpoint 3" in said
    assert "continuing from checkpoint 3" in said


def test_a_step_without_its_checksum_list_is_not_trusted(tmp_path, committed):
    from archspec.runs.checksums import MANIFEST

    run = Path(shutil.copytree(committed, tmp_path / "run"))
    (run / "checkpoints" / "latest" / "6" / MANIFEST).unlink()
    r = _resume(run)
    assert r.returncode == 0, r.stdout + r.stderr
    said = " ".join((r.stdout + r.stderr).split())
    assert "it has no checksum list, so it cannot be verified); using checkpoint 3" in said


def test_every_checkpoint_damaged_is_one_clear_message(tmp_path, committed):
    run = Path(shutil.copytree(committed, tmp_path / "run"))
    for step in (run / "checkpoints" / "latest").iterdir():
        _flip(step)
    before = {f: f.read_bytes() for f in (run / "checkpoints").rglob("*") if f.is_file()}
    r = _resume(run)
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "checkpoint 6" in errors[0] and "cannot be read" in errors[0]
    assert "does not match its checksum" in errors[0]
    assert "tensorstore" not in r.stderr.lower() and len(r.stderr.splitlines()) < 6
    after = {f: f.read_bytes() for f in (run / "checkpoints").rglob("*") if f.is_file()}
    assert after == before                              # the damaged steps are left as found
