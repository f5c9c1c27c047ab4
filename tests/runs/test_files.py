"""Run files are never written through a symbolic link: a resume refuses a linked train.log
(or lock file) before it writes anything, even when it would then refuse the run's config."""
from __future__ import annotations

import shutil

import pytest

from helpers import ROOT, only_run, run_cli


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A real run killed at its first checkpoint (so there is something to resume)."""
    out = tmp_path_factory.mktemp("runs")
    r = run_cli("train", ROOT / "experiments/digits_logistic.yaml", "--epochs", "2",
                "--set", "checkpoint.every_steps=3", "--output", out,
                env={"ARCHSPEC_FAULT_KILL": "committed:latest:3"})
    assert r.returncode == -9, r.stderr
    return only_run(out)


@pytest.mark.parametrize("name,config", [
    ("train.log", "refused"),
    pytest.param("train.log", "as trained", marks=pytest.mark.slow),
    pytest.param("run.lock", "as trained", marks=pytest.mark.slow)])
def test_resume_refuses_a_linked_run_file_before_writing_anything(tmp_path, stopped_run,
                                                                   name, config):
    run = shutil.copytree(stopped_run, tmp_path / "run")
    if config == "refused":   # a resume that reached the config would refuse it (exit 2)
        cfg = run / "config.yaml"
        cfg.write_text(cfg.read_text().replace("epochs: 2", "epochs: -2"))
    target = tmp_path / "elsewhere.txt"
    target.write_text("someone else's file\n")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(target)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and not p.is_symlink()}
    r = run_cli("train", "--resume", run)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"refusing to write {run / name}: it is a symbolic link" in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr
    assert target.read_text() == "someone else's file\n"
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and not p.is_symlink()}
    assert after == before                                            # nothing written


def test_the_log_is_opened_without_following_a_link(tmp_path):
    """A link made after the check (a race) is refused by the open itself."""
    from archspec.runs.files import RunFolderError, open_append

    target = tmp_path / "elsewhere.txt"
    target.write_text("x")
    (tmp_path / "train.log").symlink_to(target)
    with pytest.raises(RunFolderError, match="symbolic link"):
        open_append(tmp_path / "train.log")
    assert target.read_text() == "x"
