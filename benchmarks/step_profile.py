"""Where one train step's time goes: kernel time and page faults, and XLA's thunks by kind.

    .venv/bin/python benchmarks/step_profile.py --model resnet50 --batch 8
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 .venv/bin/python benchmarks/step_profile.py ...
    .venv/bin/python benchmarks/step_profile.py --model resnet50 --batch 8 --impl torch

For archspec's real train step (train_throughput.ArchspecRunner; torch: TorchRunner, 2
threads): wall time, user and system CPU time and minor page faults per step (getrusage),
then, for archspec, one jax.profiler trace of --steps steps summed by thunk kind (`ffi_call`
is a oneDNN convolution, `*_fusion` XLA's fused loops). Thunks run on two threads, so their
sum exceeds the wall time. The huge-page tunable must be in the environment when the
process starts (as the `archspec` command does for itself: archspec/hugepages.py).
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_throughput as tt  # noqa: E402


def per_step(runner, steps):
    a, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    runner.run(steps)
    wall, b = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    return {"wall_s": wall / steps, "user_s": (b.ru_utime - a.ru_utime) / steps,
            "sys_s": (b.ru_stime - a.ru_stime) / steps,
            "minor_faults": (b.ru_minflt - a.ru_minflt) / steps}


def thunks(runner, steps) -> collections.Counter:
    import jax

    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            runner.run(steps)
        (path,) = Path(d).rglob("*.trace.json.gz")
        events = json.load(gzip.open(path))
    events = events["traceEvents"] if isinstance(events, dict) else events
    kinds = collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") == "X" and not name.startswith(("ThunkExecutor", "$", "end:")):
            kinds[re.sub(r"\.\d+$", "", name)] += e["dur"] / 1e6 / steps
    return kinds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=tt.MODELS, default="resnet50")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--impl", choices=("archspec", "torch"), default="archspec")
    a = ap.parse_args()
    runner = (tt.ArchspecRunner(a.model, a.batch) if a.impl == "archspec"
              else tt.TorchRunner(a.model, a.batch, threads=2))
    runner.run(2)
    s = per_step(runner, a.steps)
    print(f"{a.impl} {a.model}, batch {a.batch}: {s['wall_s']:.3f} s a step, CPU user "
          f"{s['user_s']:.3f} s + system {s['sys_s']:.3f} s, {s['minor_faults']:,.0f} minor "
          f"page faults")
    if a.impl == "archspec":
        kinds = thunks(runner, 2)
        print(f"thunk time a step: {sum(kinds.values()):.3f} s")
        for name, secs in kinds.most_common(12):
            print(f"  {secs * 1e3:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
