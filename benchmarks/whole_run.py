"""What a user waits for: the whole `archspec train` process against a hand-written Flax/optax
script doing the same work (benchmarks/hand_train.py: the same network, optimiser, batch
and epochs, validation after every epoch, the best parameters tested at the end).

Each side is timed as a process, start to exit, imports, data, compilation and the test
included. Rounds interleave the sides (archspec, hand, archspec, ...) so drift on a shared
machine hits both; the figure is the ratio of the medians, with each side's min and max,
since the spread between identical runs is part of what a user sees.

- warm: the sides share nothing, but each reads its own caches (compiled programs, the
  generated data), filled by an untimed first run, as every run after a user's first one does;
- cold: every run starts from empty caches (archspec's one-time, per-machine files, the
  oneDNN build and its convolution choices, are kept: they are not per run);
- `--load N` starts N CPU-bound processes beside the timed ones, for the spread under
  contention.

Workloads: the MNIST-1D CNN, the digits LeNet, and a Fashion-MNIST CNN for 3 epochs (`fashion`,
asked for by name: it needs `apt-get install dataset-fashion-mnist`, and a round takes minutes).

    .venv/bin/python benchmarks/whole_run.py [--workloads mnist1d lenet fashion] [--rounds 5]
        [--cache warm cold] [--load 1] [--json benchmarks/results/whole_run.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

# workload: the experiment archspec trains; benchmarks/hand_train.py has the same name
WORKLOADS = {
    "mnist1d": "benchmarks/specs/whole_run_mnist1d.yaml",
    "lenet": "experiments/digits_lenet.yaml",
    "fashion": "benchmarks/specs/whole_run_fashion.yaml",  # needs dataset-fashion-mnist
}


def archspec_cmd(workload: str, cache: Path, out: Path) -> tuple[list[str], dict]:
    cmd = [PY, "-m", "archspec", "train", WORKLOADS[workload], "--output", str(out)]
    return cmd, {"ARCHSPEC_CACHE_DIR": str(cache), "ARCHSPEC_DATA_CACHE_DIR": str(cache / "data")}


def hand_cmd(workload: str, cache: Path, out: Path) -> tuple[list[str], dict]:
    return [PY, "benchmarks/hand_train.py", workload, "--cache", str(cache)], {}


SIDES = {"archspec": archspec_cmd, "hand": hand_cmd}


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds, and the CPU seconds (user + system, all threads) the process used: beside
    another busy process, a run waits for its CPU time rather than its wall time on idle cores."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def measure(workload: str, cache_mode: str, rounds: int, scratch: Path) -> dict:
    times, cpu = {side: [] for side in SIDES}, {side: [] for side in SIDES}
    for r in range(-1 if cache_mode == "warm" else 0, rounds):
        for side, make in SIDES.items():
            folder = scratch / f"{workload}-{side}-{cache_mode}"
            cache = folder / ("cache" if cache_mode == "warm" else f"cache{r}")
            cmd, env = make(workload, cache, folder / f"runs{r}")
            seconds, cpu_seconds = timed(cmd, env)
            if r >= 0:  # round -1 fills the warm cache
                times[side].append(seconds)
                cpu[side].append(cpu_seconds)
            print(f"  {workload} {cache_mode} round {r}: {side} {seconds:.2f} s "
                  f"({cpu_seconds:.2f} s of CPU)", flush=True)
    return {side: {"median": statistics.median(t), "min": min(t), "max": max(t),
                   "runs": [round(s, 2) for s in t], "cpu_median": statistics.median(cpu[side]),
                   "cpu_runs": [round(s, 2) for s in cpu[side]]} for side, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", default=["mnist1d", "lenet"],
                        choices=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache", nargs="+", default=["warm"], choices=["warm", "cold"])
    parser.add_argument("--load", type=int, default=0,
                        help="CPU-bound processes started beside the timed ones")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    busy = [subprocess.Popen([PY, "-c", "while True: pass"]) for _ in range(args.load)]
    rows = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for workload in args.workloads:
                for mode in args.cache:
                    result = measure(workload, mode, args.rounds, Path(scratch))
                    rows.append({"workload": workload, "cache": mode, "load": args.load,
                                 **result, "ratio": result["archspec"]["median"]
                                 / result["hand"]["median"]})
    finally:
        for p in busy:
            p.kill()
    print(f"\n| workload | cache | load | archspec median (min–max) | hand median (min–max) "
          f"| ratio | CPU seconds: archspec, hand |\n| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        a, h = row["archspec"], row["hand"]
        print(f"| {row['workload']} | {row['cache']} | {row['load']} | {a['median']:.1f} s "
              f"({a['min']:.1f}–{a['max']:.1f}) | {h['median']:.1f} s ({h['min']:.1f}–"
              f"{h['max']:.1f}) | {row['ratio']:.2f}× | {a['cpu_median']:.1f}, "
              f"{h['cpu_median']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"cpus": os.cpu_count(), "rounds": args.rounds,
                                         "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
