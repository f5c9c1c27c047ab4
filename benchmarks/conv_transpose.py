"""Transposed convolutions on oneDNN against XLA:CPU's convolution over a stride-dilated input.

    .venv/bin/python benchmarks/conv_transpose.py [--rounds 7]

conv_ops sends a transposed convolution (lax's lhs_dilation) to oneDNN as the input
gradient of the strided convolution it transposes (archspec/layers/onednn). Timed,
interleaved round by round in one process, with ARCHSPEC_CONV_BACKEND=onednn throughout:
- two U-Net up-convolutions alone (forward + both gradients): oneDNN against XLA;
- a U-Net train step's value and gradient (architectures/unet.yaml, 64x64, batch 4) with
  every convolution on oneDNN, against the same step with its 4 transposed convolutions
  left to XLA (as before they went through conv_ops).
Numbers go to benchmarks/results/conv_transpose.json. Without oneDNN it says so and exits 0.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["ARCHSPEC_CONV_BACKEND"] = "onednn"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

import common  # noqa: E402
from archspec.layers import conv_ops, onednn  # noqa: E402
from archspec.layers.onednn import build  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"2x2/2, 64->32 at 32²": (2, ((1, 1), (1, 1))),
          "3x3/2 pad 1 out 1, 64->32 at 32²": (3, ((1, 2), (1, 2)))}


def timed(f, *args):
    def run():  # returns None: common.interleaved takes a returned pair as its own times
        jax.block_until_ready(f(*args))
    return run


def layer(k, pads, via_onednn):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 32, 32, 64)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(k, k, 64, 32)), jnp.float32)
    dn = onednn.channels_last_numbers(4)
    conv = conv_ops.conv_general_dilated if via_onednn else lax.conv_general_dilated
    f = jax.jit(jax.grad(lambda x, w: jnp.sum(conv(x, w, (1, 1), pads, lhs_dilation=(2, 2),
                                                    dimension_numbers=dn) ** 2), (0, 1)))
    return timed(f, x, w)


def unet_step(transposed_on_onednn):
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture

    model = build_model(load_architecture(ROOT / "architectures/unet.yaml",
                                          input_shape=(64, 64, 1)))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 64, 64, 1)), jnp.float32)
    params = model.init(jax.random.key(0), x)["params"]

    def loss(p):
        return sum(jnp.mean(v ** 2) for v in model.apply({"params": p}, x).values())

    new = onednn._transposable
    onednn._transposable = new if transposed_on_onednn else (lambda *a: False)
    try:
        f = jax.jit(jax.value_and_grad(loss)).lower(params).compile()  # traced here
    finally:
        onednn._transposable = new
    return timed(f, params)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    lib = build.load()
    if isinstance(lib, str):
        print(f"oneDNN cannot run here: {lib}")
        return
    runners = {}
    for name, (k, pads) in LAYERS.items():
        runners[f"{name}: xla"] = layer(k, pads, False)
        runners[f"{name}: onednn"] = layer(k, pads, True)
    runners["unet step: transposed on xla"] = unet_step(False)
    runners["unet step: transposed on onednn"] = unet_step(True)
    times = common.interleaved(runners, args.rounds)
    for name in runners:
        print(f"{name:45s} {common.median(times[name]) * 1e3:9.1f} ms")
    pairs = [(f"{n}: xla", f"{n}: onednn") for n in LAYERS]
    pairs.append(("unet step: transposed on xla", "unet step: transposed on onednn"))
    ratios = {b: common.paired_ratio(times[a], times[b]) for a, b in pairs}
    for name, r in ratios.items():
        print(f"{name:45s} {r:.2f}x faster")
    common.save("conv_transpose", {"seconds": times, "speedup": ratios})


if __name__ == "__main__":
    main()
