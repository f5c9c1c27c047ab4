"""archspec's streaming image pipeline against PyTorch's DataLoader doing the same work.

The work, per image of a folder of JPEGs: decode, random-resized-crop (scale (0.08, 1),
ratio (3/4, 4/3), bilinear, back to the input size), horizontal flip with p = 1/2, float
pixels normalised per channel; batches of 128, shuffled, the last one partial.

- archspec, as `archspec train` runs it: the lazy image folder (`in_memory: false`) is read
  by `data.batches` (decode to uint8 pixels on the host: on the prefetch thread with
  `workers: 0`, in grain processes with `workers: 2`), padded to the batch size and
  copied to the device as uint8 on the prefetch thread (depth 2), then normalised
  (`data.to_network`) and augmented (`augment: [random_resized_crop, flip]`) in one
  jitted function on the device (here the CPU), as the train step does; an epoch ends
  when the last augmented batch is ready.
- torch: a map-style Dataset that decodes with PIL (`convert("RGB")`, as torchvision's
  loader), crops and resizes with PIL exactly as torchvision's RandomResizedCrop does
  (its `get_params`: 10 tries, then a centre crop; `crop` + `resize(BILINEAR)`), flips
  with PIL, and converts like ToTensor + Normalize (same mean/std as archspec's);
  DataLoader(batch_size=128, shuffle=True, num_workers=2, persistent_workers=True).
  torchvision itself is not installed (its wheels here are CUDA builds); these are the
  same PIL calls its transforms make.

Both read the same files: archspec's train split of the folder (of 2,002 files, or of
`--limit` files, one goes to the val split and one to the test split; 2,000 or limit - 2
are read), in the same number of batches.

Output size: archspec's random_resized_crop returns its input's size, so both produce
256×256 from the 256×256 files (archspec's input shape is 256×256×3: no resize on decode).

One-time start-up is excluded for both: torch's persistent workers are spawned by an
untimed warm-up epoch, and so are archspec's grain workers (`data.Stream` keeps them for
the whole run, as training does); archspec's jitted augmentation is compiled by an untimed
call on a zero batch of the same shape. The time to the first batch is recorded for every
candidate. Grain's workers read ahead into the next epoch (as in a run), so its epochs are
not interleaved with the others (they would decode during the others' timed epochs): they
run back to back after the rounds, and its ratios pair them with torch's rounds.

Candidates run interleaved (grain: see above), one epoch each per round; images/s are medians over rounds,
ratios medians of per-round ratios. Each round also times the parts of archspec's path
alone, on the calling thread: PIL decode of the epoch's files, all host work (`batches`,
workers 0: decode and stacking), host-to-device copies, and the jitted normalisation +
augmentation of resident batches.

    .venv/bin/python benchmarks/pipeline_vs_torch.py --make /tmp/jpegs256 --count 2002
    .venv/bin/python benchmarks/pipeline_vs_torch.py /tmp/jpegs256 [--limit 642] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import machine, versions  # noqa: E402
from data_pipeline import make_folder  # noqa: E402

BATCH = 128
SIZE = 256
SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


# ---------------------------------------------------------------- torch (hand-written)

def rrc_params(width: int, height: int, torch):
    """torchvision.transforms.RandomResizedCrop.get_params, line for line."""
    area = height * width
    log_ratio = torch.log(torch.tensor(RATIO))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(SCALE[0], SCALE[1]).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,)).item()
            j = torch.randint(0, width - w + 1, size=(1,)).item()
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(RATIO):
        w, h = width, int(round(width / min(RATIO)))
    elif in_ratio > max(RATIO):
        h, w = height, int(round(height * max(RATIO)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class TorchFolder:
    """Map-style dataset: PIL decode, RandomResizedCrop, RandomHorizontalFlip, ToTensor,
    Normalize (torchvision's PIL code paths)."""

    def __init__(self, files, labels, mean, std):
        self.files, self.labels = list(files), np.asarray(labels)
        self.mean, self.std = mean, std  # torch tensors (3,), in 0..1 units

    def __len__(self):
        return len(self.files)

    def __getitem__(self, k):
        import torch
        from PIL import Image

        with open(self.files[k], "rb") as f:
            img = Image.open(f).convert("RGB")
        i, j, h, w = rrc_params(img.width, img.height, torch)
        img = img.crop((j, i, j + w, i + h)).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        if torch.rand(1) < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        t = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).contiguous()
        t = t.to(torch.float32).div(255)
        t.sub_(self.mean[:, None, None]).div_(self.std[:, None, None])
        return t, int(self.labels[k])


def torch_loader(files, labels, stats, workers: int):
    import torch

    mean = torch.tensor(stats["mean"], dtype=torch.float32) / 255
    std = torch.tensor(stats["std"], dtype=torch.float32) / 255
    return torch.utils.data.DataLoader(
        TorchFolder(files, labels, mean, std), batch_size=BATCH, shuffle=True,
        num_workers=workers, persistent_workers=workers > 0)


def torch_epoch(loader) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    first, n = None, 0
    for x, _ in loader:
        if first is None:
            first = time.perf_counter() - t0
        n += len(x)
    return time.perf_counter() - t0, first, n


# ---------------------------------------------------------------- archspec

def archspec_setup(folder: str, limit: int | None):
    from archspec.data import DataConfig, load_dataset

    n = limit or sum(1 for f in Path(folder).rglob("*.jpg"))
    cfg = DataConfig(name="image_folder", path=folder, options={"in_memory": False},
                     val_fraction=1 / n, test_fraction=1 / n, limit=limit)  # 1 image each
    return load_dataset(cfg, (SIZE, SIZE, 3), seed=0)


def archspec_augment(ds, only: str | None = None):
    import jax

    from archspec.engine.augment import Flip, RandomResizedCrop, make_augment
    from archspec.engine.step import network_input

    steps = [("random_resized_crop", RandomResizedCrop(scale=list(SCALE), ratio=list(RATIO))),
             ("flip", Flip(mode="horizontal"))]
    aug = make_augment([s for s in steps if only in (None, s[0])], ds.norm_stats,
                       ds.num_classes)
    # as the train step: raw pixels are normalised on the device, then augmented
    return jax.jit(lambda key, x, y: aug(key, network_input(x, ds.norm_stats), y)[0])


def archspec_epoch(stream, augment, epoch: int) -> tuple[float, float, int]:
    """One epoch as the train loop feeds it: batches -> pad -> device_put on the prefetch
    thread (depth 2) -> jitted augmentation; results read one batch behind."""
    import jax

    from archspec.data import prefetch
    from archspec.engine.step import pad_batch

    key = jax.random.key(epoch)
    t0 = time.perf_counter()
    it = stream.epoch(epoch)
    padded = ((*pad_batch(x, y, BATCH), len(x)) for x, y in it)
    fed = prefetch(padded, 2, put=lambda b: (*jax.device_put(b[:3]), b[3]))
    first, n, pending = None, 0, None
    for b, (x, y, _, real) in enumerate(fed):
        if first is None:
            first = time.perf_counter() - t0
        out = augment(jax.random.fold_in(key, b), x, y)
        if pending is not None:
            pending.block_until_ready()
        pending, n = out, n + real
    pending.block_until_ready()
    return time.perf_counter() - t0, first, n


def parts(ds, augment, ops: dict, epoch: int) -> dict:
    """archspec's stages alone on the calling thread, seconds per epoch."""
    import jax

    from archspec.data import batches

    x = ds.train.x
    t = time.perf_counter()
    for r in x.records:
        x.decode(r)
    pil = time.perf_counter() - t
    t = time.perf_counter()
    count, batch = 0, None
    for xb, _ in batches(ds.train, BATCH, shuffle=True, seed=0, epoch=epoch):
        count, batch = count + 1, xb if batch is None else batch
    host_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(count):
        jax.block_until_ready(jax.device_put(batch))
    put = time.perf_counter() - t
    xd, yd = jax.device_put(batch), jax.device_put(np.zeros(BATCH, np.int32))
    key = jax.random.key(0)
    t = time.perf_counter()
    for b in range(count):
        augment(jax.random.fold_in(key, b), xd, yd).block_until_ready()
    aug = time.perf_counter() - t
    out = {"pil_decode": pil, "host_batches": host_s, "device_put": put,
           "augment": aug}
    for name, op in ops.items():  # each op alone, one batch, scaled to the epoch
        t = time.perf_counter()
        op(key, xd, yd).block_until_ready()
        out[f"augment_{name}_only"] = (time.perf_counter() - t) * count
    return out


# ---------------------------------------------------------------- main

def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("folder", nargs="?")
    p.add_argument("--make")
    p.add_argument("--count", type=int, default=2002)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--limit", type=int, help="read this many files of the folder (archspec's "
                   "data.limit; 2 of them go to the val and test splits)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-parts", action="store_true")
    p.add_argument("--tag", default="")
    args = p.parse_args()
    if args.make:
        make_folder(Path(args.make), args.count, SIZE)
        return

    ds = archspec_setup(args.folder, args.limit)  # NumPy only: JAX's backend is not started yet
    files, labels = ds.train.x.records, ds.train.y
    if ds.train.x.index is not None:
        files = [files[i] for i in ds.train.x.index]
    images = len(labels)
    w = args.workers

    # One-time start-up, excluded: torch's persistent workers are spawned by an untimed
    # warm-up epoch (first, so they fork before JAX starts its threads), archspec's grain
    # workers by an untimed epoch 0 of a run-long Stream; archspec's augmentation is
    # compiled by an untimed call on a zero batch of the epoch's shape.
    import jax

    from archspec.data import Stream

    loader = torch_loader(files, labels, ds.norm_stats, w)
    t = time.perf_counter()
    torch_epoch(loader)
    warm = {"torch warm-up epoch": time.perf_counter() - t}
    augment = archspec_augment(ds)
    t = time.perf_counter()
    augment(jax.random.key(0), jax.device_put(np.zeros((BATCH, SIZE, SIZE, 3), ds.train.x.dtype)),
            jax.device_put(np.zeros(BATCH, np.int32))).block_until_ready()
    warm["archspec compile + first call"] = time.perf_counter() - t
    print("start-up (s):", {k: round(v, 2) for k, v in warm.items()}, flush=True)
    ops = {}
    if not args.no_parts:
        for name in ("random_resized_crop", "flip"):  # compiled here, outside the timing
            ops[name] = archspec_augment(ds, name)
            ops[name](jax.random.key(0), jax.device_put(np.zeros((BATCH, SIZE, SIZE, 3),
                                                                 ds.train.x.dtype)),
                      jax.device_put(np.zeros(BATCH, np.int32))).block_until_ready()
    thread = Stream(ds.train, BATCH, seed=0, epochs=args.rounds + 1)
    candidates = {
        f"torch, {w} workers": lambda e: torch_epoch(loader),
        "archspec, prefetch thread": lambda e: archspec_epoch(thread, augment, e + 1),
    }

    rounds = []
    for r in range(args.rounds):
        row = {}
        for name, run in candidates.items():
            s, first, n = run(r)
            assert n == images, (name, n, images)
            row[name] = {"s": s, "first_batch_s": first}
        if not args.no_parts:
            row["parts"] = parts(ds, augment, ops, r)
        rounds.append(row)
        print(f"round {r}:", {k: round(v["s"], 2) for k, v in row.items() if k != "parts"},
              {k: round(v, 2) for k, v in row.get("parts", {}).items()}, flush=True)

    # grain's workers read ahead across epochs (as they should in a run), so interleaved
    # with the others they would decode during their timed epochs: its epochs run after
    # the rounds, back to back, after an untimed first epoch that starts the workers.
    grain_name = f"archspec, grain {w} processes"
    stream = Stream(ds.train, BATCH, seed=0, epochs=args.rounds + 1, workers=w)
    t = time.perf_counter()
    list(stream.epoch(0))
    warm["grain workers' start + first epoch"] = time.perf_counter() - t
    for r, row in enumerate(rounds):
        s, first, n = archspec_epoch(stream, augment, r + 1)
        assert n == images, (grain_name, n, images)
        row[grain_name] = {"s": s, "first_batch_s": first}
    stream.close()
    candidates[grain_name] = None
    print(f"{grain_name}, epochs 1-{args.rounds}:",
          [round(row[grain_name]["s"], 2) for row in rounds], flush=True)

    torch_name = f"torch, {w} workers"
    med = {}
    for name in candidates:
        ss = [r[name]["s"] for r in rounds]
        med[name] = {
            "s_per_epoch": statistics.median(ss),
            "images_per_s": images / statistics.median(ss),
            "first_batch_s": statistics.median(r[name]["first_batch_s"] for r in rounds),
            "vs_torch_throughput": statistics.median(r[torch_name]["s"] / r[name]["s"]
                                                     for r in rounds),
        }
    if not args.no_parts:
        med["parts_s_per_epoch"] = {k: statistics.median(r["parts"][k] for r in rounds)
                                    for k in rounds[0]["parts"]}
    for name, m in med.items():
        if name in candidates:
            print(f"{name:>30}: {m['s_per_epoch']:6.2f} s/epoch {m['images_per_s']:7.0f} "
                  f"images/s  first batch {m['first_batch_s']:5.2f} s  "
                  f"throughput vs torch {m['vs_torch_throughput']:.2f}x")
    if "parts_s_per_epoch" in med:
        print("archspec parts, s/epoch on one thread:",
              {k: round(v, 2) for k, v in med["parts_s_per_epoch"].items()})
    out = HERE / "results" / f"pipeline_vs_torch{args.tag}.json"
    out.write_text(json.dumps({
        "command": " ".join([".venv/bin/python", *sys.argv]), "images": images,
        "image_size": SIZE, "batch": BATCH, "workers": w, "machine": machine(),
        "load_end": os.getloadavg(),
        "versions": versions("jax", "jaxlib", "grain", "torch", "pillow", "numpy"),
        "startup_s": warm,
        "rounds": rounds, "median": med}, indent=1))
    print("wrote", out)


if __name__ == "__main__":
    main()
