"""A full disk anywhere in a run (a checkpoint, metrics.jsonl, train.log, TensorBoard's
events file) ends with one line, `error: no space left on device writing <file>`, exit 1, no
traceback and none of orbax's background reports; the last committed checkpoint stays
intact and the run resumes from it once there is space.

A full disk is made two ways: RLIMIT_FSIZE (a write past the limit fails with EFBIG; SIGXFSZ
ignored), and, where this machine lets a test mount one, a small tmpfs (ENOSPC)."""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import ARCHSPEC, ROOT, only_run, read_records, run_cli

EXP = ROOT / "experiments" / "digits_mlp.yaml"   # a checkpoint file of about 41 kB
ARGS = ["--epochs", "3", "--set", "checkpoint.every_steps=3", "--set", "eval_splits=[val]",
        "--set", "expect={}"]
NO_CACHE = "--no-compile-cache"  # a compiled program cut short by the limit is not kept


def _limited(limit: int, *args) -> subprocess.CompletedProcess:
    def cap():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([*ARCHSPEC, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, preexec_fn=cap, timeout=300,
                          env={**os.environ, "COLUMNS": "120"})


def _assert_one_clean_line(r, path) -> None:
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines[0] == f"error: no space left on device writing {path}", r.stderr[-3000:]
    assert len(lines) == 2 and lines[1].lstrip().startswith("hint:"), r.stderr[-3000:]


def _resumes_from(run: Path, step: int) -> None:
    r = run_cli("train", "--resume", run)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"continuing from checkpoint {step} (its checksums verified)" in r.stdout
    records = read_records(run)
    assert [x["epoch"] for x in records if x["split"] == "train"] == [1, 2, 3]
    assert [x["status"] for x in records if x["split"] == "summary"][-1] == "finished"


def _newest(run: Path) -> int:
    return max(int(p.name) for p in (run / "checkpoints" / "latest").iterdir()
               if p.name.isdigit())


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A run killed right after committing its checkpoint of step 3."""
    out = tmp_path_factory.mktemp("killed")
    r = run_cli("train", EXP, *ARGS, "--output", out,
                env={"ARCHSPEC_FAULT_KILL": "committed:latest:3"})
    assert r.returncode == -9, r.stderr
    return only_run(out)


def test_a_checkpoint_write_past_the_limit(tmp_path, killed):
    run = Path(shutil.copytree(killed, tmp_path / "run"))
    r = _limited(20_000, "train", "--resume", run, NO_CACHE)   # below one checkpoint file
    _assert_one_clean_line(r, run / "checkpoints" / "latest" / "6")
    assert sorted(p.name for p in (run / "checkpoints" / "latest").iterdir())[0] == "3"
    _resumes_from(run, 3)


@pytest.mark.parametrize("name", ["train.log",
                                  pytest.param("metrics.jsonl", marks=pytest.mark.slow)])
def test_a_log_write_past_the_limit(tmp_path, killed, name):
    """The file is filled to just under the limit, so its next write is the one that fails
    (as when the disk fills up just then)."""
    run = Path(shutil.copytree(killed, tmp_path / "run"))
    limit, path = 400_000, run / name
    pad = ("# " + "x" * 100 + "\n") if name == "train.log" else \
        json.dumps({"step": 0, "split": "note", "text": "x" * 100}) + "\n"
    with open(path, "a") as f:
        f.write(pad * ((limit - 200 - (path.stat().st_size if path.exists() else 0))
                       // len(pad)))
    r = _limited(limit, "train", "--resume", run, NO_CACHE)
    _assert_one_clean_line(r, path)
    path.write_text("")  # space freed
    _resumes_from(run, _newest(run))   # what was committed before the failure is kept


def test_tensorboard_past_the_limit_is_an_error_not_a_hang(tmp_path):
    """tensorboardX's own writer hangs on its next flush after a failed write; archspec's
    events file raises at the write."""
    code = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
        from archspec.runs.files import DiskFullError
        from archspec.runs.records import MetricsLog
        log = MetricsLog({str(tmp_path)!r})
        try:
            log.per_step("train/lr_per_step", [0.1 + i * 1e-4 for i in range(1000)], 1)
        except DiskFullError as exc:
            print(exc.message)
        log.close()
        print("closed")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    (events,) = (tmp_path / "events").iterdir()
    assert r.stdout.splitlines() == [f"no space left on device writing {events}", "closed"]
    assert r.stderr == ""


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 4 MB tmpfs, or a skip where this machine does not let the test mount one."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_tmpfs(small_tmpfs, killed):
    """A real full disk (ENOSPC): the run is on a 4 MB tmpfs with about 150 kB left."""
    run = Path(shutil.copytree(killed, small_tmpfs / "run"))
    free = os.statvfs(small_tmpfs)
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 150_000))
    r = run_cli("train", "--resume", run, NO_CACHE)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines[0].startswith(f"error: no space left on device writing {run}/"), r.stderr
    assert len(lines) == 2 and "Traceback" not in r.stderr
    filler.unlink()
    _resumes_from(run, _newest(run))
