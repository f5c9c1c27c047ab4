"""Multi-host training for real: two `archspec train` processes on this machine, joined by
`jax.distributed` (gloo collectives between their CPU devices), each with 2 devices and
feeding its own half of every batch, train the same parameters as one process with 4
devices. Both processes exit 0 and share one run folder whose checkpoints restore."""
from __future__ import annotations

import json
import os
import socket
import subprocess

import numpy as np
import pytest

from helpers import ARCHSPEC, ROOT, only_run, read_records

pytestmark = pytest.mark.slow  # ~17 s: three JAX processes, beyond the suite's budget
STEPS = 4
TRAIN = ["train", str(ROOT / "experiments/digits_logistic.yaml"), "--steps", str(STEPS)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(output, devices: int, env: dict, log) -> subprocess.Popen:
    full = {**os.environ, "COLUMNS": "120",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", **env}
    with open(log, "w") as f:  # a file, not a pipe: a full pipe would stall the launch
        return subprocess.Popen([*ARCHSPEC, *TRAIN, "--output", str(output)], env=full,
                                cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)


def _finish(procs, logs, timeout=180) -> list[tuple[int, str]]:
    try:
        codes = [p.wait(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [(code, log.read_text()) for code, log in zip(codes, logs)]


def _params(run):
    import jax

    from archspec.use.evaluate import load_state

    _, state, _ = load_state(run, "latest")
    return jax.device_get(state.params), int(state.step)


def test_two_processes_train_what_one_process_with_four_devices_trains(tmp_path):
    port = _free_port()
    launch = {"JAX_COORDINATOR_ADDRESS": f"localhost:{port}", "JAX_NUM_PROCESSES": "2",
              "ARCHSPEC_RUN_NAME": "two-hosts"}
    logs = [tmp_path / f"{name}.log" for name in ("process0", "process1", "one")]
    procs = [_start(tmp_path / "two", 2, {**launch, "JAX_PROCESS_ID": str(i)}, logs[i])
             for i in (0, 1)]
    procs.append(_start(tmp_path / "one", 4, {}, logs[2]))  # meanwhile: one process, 4 devices
    results = _finish(procs, logs)
    for code, text in results:
        assert code == 0, text
    assert all(f"{STEPS} steps on 4 device(s)" in text for _, text in results)

    run = only_run(tmp_path / "two")  # one folder for both processes
    assert run.name == "two-hosts"
    assert json.loads((run / "launch.json").read_text())["processes"] == 2
    assert json.loads((run / "env.json").read_text())["process_count"] == 2
    records = read_records(run)  # written by process 0 alone
    assert [r["split"] for r in records] == ["train", "val", "test", "summary"]
    assert records[-1]["status"] == "finished"
    log = (run / "train.log").read_text()
    assert log.count("$ archspec train") == 1  # one process keeps the log
    for which in ("latest", "best"):  # both processes write both, the same step at once
        assert [p.name for p in (run / "checkpoints" / which).iterdir()] == [str(STEPS)]
        assert (run / "checkpoints" / which / str(STEPS) / "archspec.sha256").is_file()

    two, step_two = _params(run)  # restored the way `archspec eval` and --resume do
    one, step_one = _params(only_run(tmp_path / "one"))
    assert step_two == step_one == STEPS
    flat_two, flat_one = _leaves(two), _leaves(one)
    assert flat_two.keys() == flat_one.keys() and flat_two
    for name, value in flat_two.items():
        np.testing.assert_allclose(value, flat_one[name], rtol=1e-5, atol=1e-7, err_msg=name)
    single = [r["loss"] for r in read_records(only_run(tmp_path / "one")) if "loss" in r]
    np.testing.assert_allclose([r["loss"] for r in records if "loss" in r], single, rtol=1e-5)


def _leaves(tree) -> dict:
    import jax

    return {jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}
