"""The owner of a run folder (runs/lock.py): a second process is refused, naming the holder's
pid and host, or waits; the lock goes with its process, kill -9 included."""
from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import pytest

from archspec.runs.files import RunFolderError
from archspec.runs.lock import LOCK_NAME, owning

HOLD = textwrap.dedent("""
    import sys, time
    from archspec.runs.lock import owning
    with owning(sys.argv[1]):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _holder(run, seconds=60.0) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_owner_is_refused_with_the_holders_pid_and_host(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(RunFolderError) as info:
            with owning(tmp_path):
                pass
        assert f"process {proc.pid} on host {socket.gethostname()}" in info.value.message
        assert "is training in it" in info.value.message and "--wait" in info.value.hint
    finally:
        proc.kill()
        proc.wait()


def test_kill_9_releases_the_lock(tmp_path):
    proc = _holder(tmp_path)
    proc.kill()   # SIGKILL: no clean-up runs in the holder
    proc.wait()
    with owning(tmp_path):
        text = (tmp_path / LOCK_NAME).read_text()
    assert f'"pid": {__import__("os").getpid()}' in text   # the new holder's name


def test_wait_starts_when_the_holder_ends(tmp_path):
    proc = _holder(tmp_path, seconds=1.5)
    said = []
    t0 = time.monotonic()
    with owning(tmp_path, wait=True, say=said.append):
        waited = time.monotonic() - t0
    proc.wait()
    assert said and f"waiting for process {proc.pid}" in said[0]
    assert waited > 0.5


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with owning(tmp_path):
        with owning(tmp_path):   # a sweep point owns its folder, then trains in it
            pass
        proc = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path), "0"],
                              capture_output=True, text=True)
        assert proc.returncode == 1 and "RunFolderError" in proc.stderr  # still held
    with owning(tmp_path):
        pass


def test_a_linked_lock_file_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).symlink_to(target)
    with pytest.raises(RunFolderError, match="symbolic link"):
        with owning(run):
            pass
    assert target.read_text() == "keep"
