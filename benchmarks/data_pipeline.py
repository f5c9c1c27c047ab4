"""How fast a lazily decoded image folder streams: decoding on the prefetch thread alone,
in a pool of threads, or in grain worker processes (archspec's choice for lazy data).

Each candidate reads one epoch of batches of the same folder, in the same order, and
every candidate is run once per round, interleaved; times are medians over rounds.

    .venv/bin/python benchmarks/data_pipeline.py FOLDER [--size 64] [--batch 128] [--rounds 3]
    (make a folder: .venv/bin/python benchmarks/data_pipeline.py --make /tmp/jpegs --count 4000)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from archspec.data import DataConfig, Stream, batches, load_dataset

HERE = Path(__file__).resolve().parent


def make_folder(root: Path, count: int, size: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        base = rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.uint8)
        img = Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC)
        img.save(folder / f"{i}.jpg", quality=90)


def threaded_epoch(split, batch: int, threads: int):
    """The same batches, each image decoded by a pool of threads (PIL drops the GIL)."""
    x = split.x
    order = np.arange(len(split.y))
    with ThreadPoolExecutor(threads) as pool:
        for lo in range(0, len(order), batch):
            idx = order[lo:lo + batch]
            yield np.stack(list(pool.map(lambda i: x[int(i)], idx))), split.y[idx]


def epoch_time(make) -> float:
    t = time.perf_counter()
    n = sum(len(y) for _, y in make())
    return time.perf_counter() - t, n


def grain_epoch(split, batch: int, workers: int):
    """One epoch of a new Stream: its worker processes' start-up is in the time."""
    stream = Stream(split, batch, seed=0, epochs=1, workers=workers)
    try:
        yield from stream.epoch(0)
    finally:
        stream.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("folder", nargs="?")
    p.add_argument("--make")
    p.add_argument("--count", type=int, default=4000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if args.make:
        make_folder(Path(args.make), args.count, args.size)
        return
    cfg = DataConfig(name="image_folder", path=args.folder, options={"in_memory": False})
    split = load_dataset(cfg, (args.size, args.size, 3), seed=0).train
    cpus = len(os.sched_getaffinity(0))
    candidates = {
        "prefetch thread only": lambda: batches(split, args.batch, shuffle=False, seed=0,
                                                epoch=0),
        f"{cpus} threads": lambda: threaded_epoch(split, args.batch, cpus),
        f"grain, {cpus} processes": lambda: grain_epoch(split, args.batch, cpus),
    }
    rounds = [{name: epoch_time(make)[0] for name, make in candidates.items()}
              for _ in range(args.rounds)]
    med = {k: statistics.median(r[k] for r in rounds) for k in candidates}
    for k, v in med.items():
        print(f"{k:>24}: {v:6.2f} s/epoch  {len(split.y) / v:8.0f} images/s")
    out = HERE / "results" / "data_pipeline.json"
    out.write_text(json.dumps({"command": " ".join(sys.argv), "images": len(split.y),
                               "rounds": rounds, "median_s": med, "cpus": cpus}, indent=1))


if __name__ == "__main__":
    main()
