"""A stop signal before the first step (while XLA compiles, in C++, for minutes on a large
program) ends the process at once with exit 130: there is nothing to save yet. After the
first step a stop still waits for the step boundary and writes a final checkpoint."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import ROOT, only_run, read_records

# make_multi_step's first call blocks in C for 60 s, as XLA's compiler does: a Python
# signal handler runs between the C calls but nothing returns to the training loop.
SLOW_FIRST_CALL = textwrap.dedent("""\
    import ctypes, sys, time
    from archspec.train import loop
    real = loop.make_multi_step

    def slow(*args, **kw):
        fn, first = real(*args, **kw), [True]

        def step(*a):
            if first[0]:
                first[0] = False
                print("COMPILING", flush=True)
                libc, end = ctypes.CDLL(None), time.monotonic() + 60
                while time.monotonic() < end:
                    libc.usleep(100000)
            return fn(*a)
        return step

    loop.make_multi_step = slow
    from archspec.cli import main
    sys.argv = ["archspec", "train", *sys.argv[1:]]
    main()
    """)


def start(tmp_path, *args):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_FIRST_CALL)
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "120"})


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_compiling_ends_the_process_at_once(tmp_path, sig):
    out = tmp_path / "runs"
    proc = start(tmp_path, ROOT / "experiments" / "digits_logistic.yaml", "--epochs", "1",
                 "--output", out)
    try:
        for line in proc.stdout:  # the run is set up; its first step is compiling
            if "COMPILING" in line:
                break
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=20)  # the compile would hold it 60 s
        took = time.monotonic() - t0
    finally:
        proc.kill()
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr[-2000:]
    assert took < 10 and "Traceback" not in stderr
    assert "stopped before the first step (while compiling): nothing to save" in stderr
    records = read_records(only_run(out))
    assert records[-1] == {"step": 0, "split": "summary", "attempt": 0, "status": "stopped"}


@pytest.mark.slow
def test_a_signal_during_a_real_long_compile_ends_the_process_at_once(tmp_path):
    """80 convolutions unrolled: the first step compiles for 14 s or more on 2 CPU cores."""
    exp = tmp_path / "slow.yaml"
    exp.write_text(textwrap.dedent("""\
        name: slow
        architecture:
          name: slow
          input: {shape: [16, 16, 1]}
          layers:
            - conv: {maps: 8, kernel: 3, padding: same, repeat: 80}
            - flatten
            - dense: {units: 10, activation: linear, name: out}
          heads:
            y: {from: out, output: softmax}
        data: {name: digits, limit: 200}
        epochs: 1
        batch_size: 16
        steps_per_execution: 4
        """))
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "archspec", "train", str(exp), "--output",
                             str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()  # "slow: slow, 66,706 parameters, ...": set up, now compiling
        time.sleep(8)           # the first step compiles for 14 s or more
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        took = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130 and took < 10, (took, proc.stderr.read()[-2000:])
    last = read_records(only_run(out))[-1]  # the early stop's record: before any step
    assert last["step"] == 0 and last["status"] == "stopped" and "seconds" not in last
