"""Do the four implementations compute the same network? Parameter counts, and the loss at
step 0 on the same batch once archspec's initial weights are copied into the others.

    .venv/bin/python benchmarks/check_equivalence.py --model cnn6 [--batch 8]

Training-mode forward (batch-norm statistics from the batch) for the ResNets; inference mode
for LeNet (its dropout would draw different masks in each framework).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("KERAS_BACKEND", "jax")

import common  # noqa: E402
from train_throughput import MODELS, data  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=MODELS, default="cnn6")
    ap.add_argument("--batch", type=int, default=8)
    a = ap.parse_args()
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import torch

    import ref_flax
    import ref_keras
    import ref_torch
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture

    train = a.model != "lenet"
    x, y = data(a.model, a.batch)
    graph = load_architecture(common.ROOT / MODELS[a.model][0])
    model = build_model(graph)
    v = model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)}, x[:1])
    params, stats = v["params"], v.get("batch_stats", {})
    out = model.apply(v, x, train=train, mutable=["batch_stats"] if train and stats else False)
    logits = (out[0] if isinstance(out, tuple) else out)[next(iter(graph.heads))]
    losses = {"archspec": float(optax.softmax_cross_entropy_with_integer_labels(logits, y).mean())}
    counts = {"archspec": int(sum(p.size for p in jax.tree_util.tree_leaves(params)))}

    ref = ref_flax.make(a.model)
    rp, rs = ref_flax.init(ref, jnp.asarray(x[:1]), jit=False)
    counts["flax"] = int(sum(p.size for p in jax.tree_util.tree_leaves(rp)))
    rp = ref_flax.fill(rp, ref_flax.ordered_leaves(params))
    rs = ref_flax.fill(rs, ref_flax.ordered_leaves(stats)) if stats else rs
    losses["flax"] = ref_flax.loss_at(ref, rp, rs, jnp.asarray(x), jnp.asarray(y), train)

    km = ref_keras.make(a.model)
    counts["keras"] = int(sum(np.prod(w.shape) for w in km.trainable_weights))
    ref_keras.set_from_archspec(km, jax.device_get(params), jax.device_get(stats))
    kl = km(x, training=train)
    losses["keras"] = float(optax.softmax_cross_entropy_with_integer_labels(
        jnp.asarray(kl), y).mean())

    tm = ref_torch.make(a.model)
    counts["torch"] = sum(p.numel() for p in tm.parameters())
    hwc = {"lenet": (2, 2, 64), "cnn6": (4, 4, 128)}.get(a.model)
    ref_torch.set_from_archspec(tm, jax.device_get(params), jax.device_get(stats), hwc)
    tm.train(train)
    with torch.no_grad():
        tl = tm(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        losses["torch"] = float(torch.nn.functional.cross_entropy(tl, torch.from_numpy(
            y.astype("int64"))))
    base = losses["archspec"]
    print(f"{a.model}: batch {a.batch}, {'train' if train else 'inference'}-mode forward")
    for k in losses:
        print(f"  {k:9s} params {counts[k]:>12,d}  loss@0 {losses[k]:.6f}  "
              f"rel.diff {abs(losses[k] - base) / abs(base):.1e}")
    ok = len(set(counts.values())) == 1 and all(
        abs(v_ - base) <= 1e-4 * abs(base) for v_ in losses.values())
    print("same network:", ok)
    common.save(f"equivalence_{a.model}", {"model": a.model, "batch": a.batch, "params": counts,
                                           "loss_at_step0": losses, "same": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
