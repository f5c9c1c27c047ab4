"""What a streamed image folder costs before step 1: listing, checking every header, and
the decoding pass for the normalisation statistics. Both results are kept in the data
cache keyed by the folder's listing, so only a first start pays for them.

Each run is a new process that loads the folder as `archspec train` does
(`load_dataset`, streamed); `cold` starts from an empty data cache, `warm` from the one a
previous run filled. Rounds interleave the two; medians with min-max.

    .venv/bin/python benchmarks/folder_start.py FOLDER [--size 64] [--rounds 3]
    (make a folder: .venv/bin/python benchmarks/data_pipeline.py --make /tmp/jpegs --count 20000)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOAD = """
import sys
from archspec.data import DataConfig, load_dataset
cfg = DataConfig(name="image_folder", path=sys.argv[1], options={"in_memory": False})
d = load_dataset(cfg, (int(sys.argv[2]), int(sys.argv[2]), 3), seed=0)
print(len(d.train.x), d.norm_stats["mean"])
"""


def timed(folder: str, size: int, cache: Path) -> tuple[float, str]:
    env = {**os.environ, "ARCHSPEC_DATA_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LOAD, folder, str(size)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    times = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            cache = Path(tmp) / f"round{r}"
            cold, seen = timed(args.folder, args.size, cache)
            warm, again = timed(args.folder, args.size, cache)
            assert seen == again, (seen, again)  # the cache never changes a result
            times["cold"].append(cold)
            times["warm"].append(warm)
            print(f"round {r}: cold {cold:.2f} s, warm {warm:.2f} s ({seen.split()[0]} "
                  "training images)", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"cold {med['cold']:.2f} s ({min(times['cold']):.2f}-{max(times['cold']):.2f}), "
          f"warm {med['warm']:.2f} s ({min(times['warm']):.2f}-{max(times['warm']):.2f}), "
          f"{med['cold'] / med['warm']:.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"folder": args.folder, "cpus": os.cpu_count(),
                                         "times": times}, indent=1) + "\n")


if __name__ == "__main__":
    main()
