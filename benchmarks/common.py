"""Shared helpers of the benchmark scripts: machine facts, interleaved timing, result rows.

Timing on a shared CPU: the candidates of one comparison run in ONE process, interleaved
round by round (A, B, C, A, B, C, ...), and each candidate's time is the median over
rounds, so a burst of load from another process hits every candidate alike. Ratios are
computed per round and their median reported as well.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = Path(__file__).resolve().parent / "specs"
RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_1min": load}


def versions(*names) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


def interleaved(runners: dict, rounds: int, warmup: int = 1, cpu: dict | None = None) -> dict:
    """`runners`: name -> fn() that runs a block of work and blocks until done.
    Returns name -> list of wall-clock seconds per round (warm-up rounds dropped). If `cpu`
    is a dict it receives name -> list of process CPU seconds (all threads) per round: on a
    machine shared with other jobs, CPU time is far steadier than wall time (time spent
    descheduled is not counted), so small overheads are judged on it. A fn that returns a
    pair gives its own (wall, CPU) seconds (work done in another process)."""
    times = {k: [] for k in runners}
    if cpu is not None:
        cpu.update({k: [] for k in runners})
    for r in range(warmup + rounds):
        for name, fn in runners.items():
            c = time.process_time()
            t = time.perf_counter()
            own = fn()
            dt, dc = own if isinstance(own, tuple) else (time.perf_counter() - t,
                                                         time.process_time() - c)
            if r >= warmup:
                times[name].append(dt)
                if cpu is not None:
                    cpu[name].append(dc)
    return times


def median(xs):
    return statistics.median(xs)


def paired_ratio(a: list, b: list) -> float:
    """Median over rounds of a[i] / b[i] (both measured in the same round)."""
    return statistics.median(x / y for x, y in zip(a, b))


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
               **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
