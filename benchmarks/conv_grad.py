"""Weight-gradient lowerings of a 2-D convolution, timed side by side per layer shape.

    .venv/bin/python benchmarks/conv_grad.py [--rounds 15] [--layers cnn6|lenet|resnet18|all]

Candidates for dW of y = conv(x, W) given the output cotangent g (NHWC, HWIO):
  xla     : jax.vjp of lax.conv_general_dilated (XLA's own transposed convolution)
  im2col  : channels-first patches (kh*kw*ci, N*Ho*Wo) built from strided slices, one
            matmul with g (N*Ho*Wo, co)
  shifts  : kh*kw matmuls of a shifted slice with g, stacked (no patch matrix)
The full backward (dx + dW) and the forward are printed for scale. FLOP/s = 2*MACs/time.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

import common  # noqa: E402

DN = ("NHWC", "HWIO", "NHWC")
LAYERS = {  # (batch, size, ci, co) of 3×3 stride-1 'same' convs
    "lenet": [(64, 8, 1, 32), (64, 4, 32, 64)],
    "cnn6": [(64, 32, 3, 32), (64, 32, 32, 32), (64, 16, 32, 64), (64, 16, 64, 64),
             (64, 8, 64, 128), (64, 8, 128, 128)],
    "resnet18": [(64, 32, 3, 64), (64, 32, 64, 64), (64, 16, 128, 128), (64, 8, 256, 256),
                 (64, 4, 512, 512)],
}


def conv(x, k):
    return lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=DN)


def wg_xla(x, k, g):
    return jax.vjp(lambda k: conv(x, k), k)[1](g)[0]


def _shifted(x, kh, kw, H, W):
    xp = jnp.pad(x, ((0, 0), (kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2), (0, 0)))
    return [xp[:, i:i + H, j:j + W, :] for i in range(kh) for j in range(kw)]


def wg_im2col(x, k, g):
    kh, kw, ci, co = k.shape
    n, H, W, _ = g.shape
    xt = jnp.transpose(x, (3, 0, 1, 2))  # channels first: slices become contiguous rows
    xp = jnp.pad(xt, ((0, 0), (0, 0), (kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2)))
    p = jnp.stack([xp[:, :, i:i + H, j:j + W] for i in range(kh) for j in range(kw)])
    return jnp.dot(p.reshape(kh * kw * ci, -1), g.reshape(-1, co)).reshape(kh, kw, ci, co)


def wg_shifts(x, k, g):
    kh, kw, ci, co = k.shape
    n, H, W, _ = g.shape
    g2 = g.reshape(-1, co)
    rows = [lax.dot_general(s.reshape(-1, ci), g2, (((0,), (0,)), ((), ())))
            for s in _shifted(x, kh, kw, H, W)]
    return jnp.stack(rows).reshape(kh, kw, ci, co)


def full_bwd(x, k, g):
    return jax.vjp(conv, x, k)[1](g)


def fwd(x, k, g):
    return conv(x, k)


CANDIDATES = {"fwd": fwd, "xla": wg_xla, "im2col": wg_im2col, "shifts": wg_shifts,
              "dx+dW": full_bwd}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--inner", type=int, default=3)
    ap.add_argument("--layers", default="all")
    a = ap.parse_args()
    shapes = [s for name, v in LAYERS.items() if a.layers in (name, "all") for s in v]
    rng = np.random.default_rng(0)
    rows = []
    print(common.machine())
    for n, size, ci, co in shapes:
        x = jnp.asarray(rng.normal(size=(n, size, size, ci)), jnp.float32)
        k = jnp.asarray(rng.normal(size=(3, 3, ci, co)), jnp.float32)
        g = jnp.asarray(rng.normal(size=(n, size, size, co)), jnp.float32)
        ref = jax.jit(wg_xla)(x, k, g)
        fns, errs = {}, {}
        for name, f in CANDIDATES.items():
            jf = jax.jit(f)
            out = jax.block_until_ready(jf(x, k, g))
            if name in ("im2col", "shifts"):
                errs[name] = float(jnp.abs(out - ref).max() / jnp.abs(ref).max())
            fns[name] = (lambda jf=jf: jax.block_until_ready([jf(x, k, g) for _ in range(a.inner)]))
        t = common.interleaved(fns, a.rounds)
        flop = 2 * n * size * size * 9 * ci * co
        med = {name: common.median(v) / a.inner for name, v in t.items()}
        rel = {name: common.paired_ratio(t[name], t["xla"]) for name in ("im2col", "shifts")}
        row = {"shape": [n, size, size, ci, co], "ms": {k_: v * 1e3 for k_, v in med.items()},
               "gflops": {k_: flop / v / 1e9 for k_, v in med.items() if k_ != "dx+dW"},
               "vs_xla": rel, "rel_err": errs}
        rows.append(row)
        print(f"N{n} {size}x{size} {ci:>3}->{co:<3} " + "  ".join(
            f"{k_} {v * 1e3:7.2f}ms" for k_, v in med.items())
            + f" | wg GF/s xla {row['gflops']['xla']:.0f} im2col {row['gflops']['im2col']:.0f}"
            f" | im2col/xla {rel['im2col']:.2f} shifts/xla {rel['shifts']:.2f} err {errs}")
    common.save("conv_grad", {"rows": rows, "versions": common.versions("jax", "jaxlib")})


if __name__ == "__main__":
    main()
