"""oneDNN convolutions called from JAX through XLA FFI custom calls, against XLA:CPU's own.

    .venv/bin/pip install onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0
    .venv/bin/python benchmarks/onednn_conv.py [--rounds 9] [--inner 3] [--layers cnn6|resnet18|all]
    .venv/bin/python benchmarks/onednn_conv.py --check      # values and gradients only
    .venv/bin/python benchmarks/onednn_conv.py --zoo architectures/resnet50.yaml:32 ...

archspec's optional oneDNN backend (archspec/layers/onednn: forward, input gradient and
weight gradient as three FFI handlers in conv.cc, channels-last activations, HWIO kernels,
1-3 spatial dims, stride, padding, dilation, groups; primitives cached per shape) is compiled
with g++ on first use into $XDG_CACHE_HOME/archspec/onednn-<hash>/ (default ~/.cache) against
the oneDNN 3.2 wheels above (GNU OpenMP build). Without the wheels or a compiler the script
says so and exits 0.

For each 3x3 'same' layer of the benchmark CNNs it times, interleaved round by round in one
process: XLA's forward, XLA's input+weight gradient (jax.vjp), and the same two through
oneDNN; with --torch, also torch.nn.functional.conv2d forward and backward (eager, 2
threads, channels-last), the kernels PyTorch's CNN rows use. Numbers go to
benchmarks/results/onednn_conv.json.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

import common  # noqa: E402
from archspec.layers import onednn  # noqa: E402
from archspec.layers.onednn import build  # noqa: E402

LAYERS = {  # (batch, size, ci, co) of 3x3 stride-1 'same' convs
    "cnn6": [(64, 32, 3, 32), (64, 32, 32, 32), (64, 16, 32, 64), (64, 16, 64, 64),
             (64, 8, 64, 128), (64, 8, 128, 128)],
    "resnet18": [(64, 32, 3, 64), (64, 32, 64, 64), (64, 16, 128, 128), (64, 8, 256, 256),
                 (64, 4, 512, 512)],
}
out_shape = onednn.output_shape


def onednn_conv(x, w, cfg):
    return onednn.conv(x, w, *cfg)


def xla_conv(x, w, cfg):
    stride, padding, dilation, groups = cfg
    n = x.ndim
    lhs = (0, n - 1) + tuple(range(1, n - 1))
    rhs = (n - 1, n - 2) + tuple(range(0, n - 2))
    return lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation,
                                    dimension_numbers=lax.ConvDimensionNumbers(lhs, rhs, lhs),
                                    feature_group_count=groups,
                                    precision=lax.Precision.HIGHEST)


CHECKS = [  # (x shape, kernel spatial, co, stride, padding, dilation, groups)
    ((2, 9, 10, 3), (3, 3), 8, (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 11, 9, 4), (3, 2), 6, (2, 1), ((0, 2), (1, 0)), (1, 2), 2),
    ((3, 17, 5), (5,), 4, (3,), ((2, 1),), (2,), 1),
    ((1, 5, 6, 7, 4), (2, 3, 2), 8, (1, 2, 1), ((1, 0), (1, 1), (0, 1)), (2, 1, 1), 4),
    ((2, 8, 8, 6), (1, 1), 6, (2, 2), ((0, 0), (0, 0)), (1, 1), 6),
]


def check():
    rng = np.random.default_rng(0)
    worst = 0.0
    for xs, ks, co, stride, padding, dilation, groups in CHECKS:
        x = jnp.asarray(rng.normal(size=xs), jnp.float32)
        w = jnp.asarray(rng.normal(size=(*ks, xs[-1] // groups, co)), jnp.float32)
        cfg = (stride, padding, dilation, groups)
        ys = out_shape(x.shape, w.shape, stride, padding, dilation)
        g = jnp.asarray(rng.normal(size=ys), jnp.float32)
        ref = jax.jit(lambda x, w: jax.vjp(lambda x, w: xla_conv(x, w, cfg), x, w))
        got = jax.jit(lambda x, w: jax.vjp(lambda x, w: onednn_conv(x, w, cfg), x, w))
        (yr, fr), (yo, fo) = ref(x, w), got(x, w)
        errs = []
        for a, b in zip((yo, *fo(g)), (yr, *fr(g))):
            errs.append(float(jnp.abs(a - b).max() / jnp.abs(b).max()))
        worst = max(worst, *errs)
        print(f"x{xs} k{ks}->{co} s{stride} p{padding} d{dilation} g{groups}: "
              f"rel err y {errs[0]:.1e} dx {errs[1]:.1e} dw {errs[2]:.1e}")
    print(f"worst relative error {worst:.1e}")
    return worst


def impl_names(n, size, ci, co):
    return onednn.impl_names((n, size, size, ci), (3, 3, ci, co), (1, 1), ((1, 1), (1, 1)),
                             (1, 1))


def torch_runners(n, size, ci, co, inner):
    import torch
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    x = torch.randn(n, ci, size, size).to(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(co, ci, 3, 3).to(memory_format=torch.channels_last).requires_grad_()
    g = torch.randn(n, co, size, size).to(memory_format=torch.channels_last)
    F = torch.nn.functional

    def fwd():
        with torch.no_grad():
            for _ in range(inner):
                F.conv2d(x, w, padding=1)

    y = F.conv2d(x, w, padding=1)

    def bwd():  # the backward alone: the graph of one forward, kept
        for _ in range(inner):
            torch.autograd.grad(y, (x, w), g, retain_graph=True)
    return fwd, bwd


def bench(a):
    shapes = [s for name, v in LAYERS.items() if a.layers in (name, "all") for s in v]
    rng = np.random.default_rng(0)
    rows = []
    for n, size, ci, co in shapes:
        cfg = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
        x = jnp.asarray(rng.normal(size=(n, size, size, ci)), jnp.float32)
        w = jnp.asarray(rng.normal(size=(3, 3, ci, co)), jnp.float32)
        g = jnp.asarray(rng.normal(size=(n, size, size, co)), jnp.float32)
        fns = {}
        for impl, conv in (("xla", xla_conv), ("onednn", onednn_conv)):
            f = jax.jit(lambda x, w, conv=conv: conv(x, w, cfg))
            b = jax.jit(lambda x, w, g, conv=conv: jax.vjp(lambda x, w: conv(x, w, cfg), x, w)[1](g))
            jax.block_until_ready((f(x, w), b(x, w, g)))
            fns[f"{impl}_fwd"] = lambda f=f: jax.block_until_ready([f(x, w) for _ in range(a.inner)])
            fns[f"{impl}_bwd"] = lambda b=b: jax.block_until_ready([b(x, w, g) for _ in range(a.inner)])
        if a.torch:
            fns["torch_fwd"], fns["torch_bwd"] = torch_runners(n, size, ci, co, a.inner)
        t = common.interleaved(fns, a.rounds)
        flop = 2 * n * size * size * 9 * ci * co
        ms = {k: common.median(v) / a.inner * 1e3 for k, v in t.items()}
        step = {impl: [f + b for f, b in zip(t[f"{impl}_fwd"], t[f"{impl}_bwd"])]
                for impl in ("xla", "onednn", "torch") if f"{impl}_fwd" in t}
        row = {"shape": [n, size, size, ci, co], "ms": ms,
               "gflops": {k: (flop if k.endswith("fwd") else 2 * flop) / (v / 1e3) / 1e9
                          for k, v in ms.items()},
               "onednn_vs_xla": {p: common.paired_ratio(t[f"onednn_{p}"], t[f"xla_{p}"])
                                 for p in ("fwd", "bwd")},
               "onednn_vs_xla_fwd_bwd": common.paired_ratio(step["onednn"], step["xla"]),
               "impl": impl_names(n, size, ci, co)}
        if a.torch:
            row["onednn_vs_torch_fwd_bwd"] = common.paired_ratio(step["onednn"], step["torch"])
        rows.append(row)
        print(f"N{n} {size}x{size} {ci:>3}->{co:<3} "
              + " ".join(f"{k} {v:6.2f}ms ({row['gflops'][k]:3.0f} GF/s)" for k, v in ms.items())
              + f" | onednn/xla fwd {row['onednn_vs_xla']['fwd']:.2f}"
              f" bwd {row['onednn_vs_xla']['bwd']:.2f} both {row['onednn_vs_xla_fwd_bwd']:.2f}"
              + (f" | onednn/torch {row['onednn_vs_torch_fwd_bwd']:.2f}" if a.torch else "")
              + f" | {row['impl']}", flush=True)
    tot = {k: sum(r["ms"][k] for r in rows) for k in rows[0]["ms"]}
    print("sum of layers (ms): " + " ".join(f"{k} {v:.1f}" for k, v in tot.items()))
    common.save("onednn_conv" + a.tag, {"rows": rows, "sum_ms": tot, "env": {
        k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
        "versions": common.versions("jax", "jaxlib", "onednn-cpu-gomp", "torch")})


def zoo(items):
    """Loss and parameter gradients of whole networks (train mode, batch 2, random
    parameters, batch statistics 1) in float32 with oneDNN's and with XLA's convolutions,
    each against XLA in float64. A leaf's error is relative to its own norm, or to 1e-3 of the
    whole gradient's norm when smaller (conv biases before a batch norm have a gradient that
    is zero up to rounding). Batch norm over very few values (a 1x1 map, batch 2) makes a
    network ill-conditioned: then both float32 paths are far from float64 alike."""
    import os as _os

    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture

    jax.config.update("jax_enable_x64", True)
    rows = []
    for item in items:
        path, size = item.rsplit(":", 1)
        size = int(size)
        graph = load_architecture(common.ROOT / path, input_shape=(size, size, 3))
        model = build_model(graph)
        xn = np.random.default_rng(2).normal(size=(2, size, size, 3))
        shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.asarray(xn, jnp.float32))
        rng = np.random.default_rng(5)
        pn = jax.tree_util.tree_map(lambda a: 0.05 * rng.normal(size=a.shape), shapes["params"])
        bs = jax.tree_util.tree_map(lambda a: np.ones(a.shape), shapes.get("batch_stats", {}))
        head = next(iter(jax.eval_shape(model.apply, {k: shapes[k] for k in (
            "params", "batch_stats") if k in shapes}, jnp.asarray(xn, jnp.float32))))

        def run(dtype, backend):
            _os.environ[onednn.ENV] = backend
            cast = lambda t: jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), t)  # noqa
            params, stats, x = cast(pn), cast(bs), jnp.asarray(xn, dtype)

            def f(p):
                out, _ = model.apply({"params": p, **({"batch_stats": stats} if stats else {})},
                                     x, train=True, mutable=["batch_stats"],
                                     rngs={"dropout": jax.random.key(1)})
                return jnp.mean(out[head] ** 2)
            lo = jax.jit(jax.value_and_grad(f)).lower(params)
            return lo.as_text().count("archspec_onednn_conv_fwd"), lo.compile()(params)

        _, ref = run(jnp.float64, "xla")
        n, got = run(jnp.float32, "onednn")
        _, xla = run(jnp.float32, "xla")
        _os.environ.pop(onednn.ENV)
        leaves_ref = jax.tree_util.tree_leaves(ref[1])
        total = float(np.sqrt(sum(float(jnp.sum(b * b)) for b in leaves_ref)))

        def err(r):
            loss = abs(float(r[0]) - float(ref[0])) / abs(float(ref[0]))
            grad = max(float(jnp.linalg.norm(a - b)) / max(float(jnp.linalg.norm(b)), 1e-3 * total)
                       for a, b in zip(jax.tree_util.tree_leaves(r[1]), leaves_ref))
            return loss, grad
        row = {"spec": path, "input": size, "onednn_convs": n, "onednn_vs_f64": err(got),
               "xla_vs_f64": err(xla)}
        rows.append(row)
        print(f"{path} at {size}²: {n} convolutions on oneDNN; vs float64 (loss, worst "
              f"gradient leaf): oneDNN {row['onednn_vs_f64'][0]:.1e}, "
              f"{row['onednn_vs_f64'][1]:.1e}; XLA {row['xla_vs_f64'][0]:.1e}, "
              f"{row['xla_vs_f64'][1]:.1e}", flush=True)
    common.save("onednn_zoo", {"rows": rows})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--inner", type=int, default=3)
    ap.add_argument("--layers", default="cnn6")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--torch", action="store_true")
    ap.add_argument("--tag", default="")
    ap.add_argument("--zoo", nargs="*", metavar="SPEC:SIZE",
                    help="compare whole networks' loss and gradients instead of timing")
    a = ap.parse_args()
    lib = build.load()
    if isinstance(lib, str):
        print(f"skipped: {lib}")
        return
    print(common.machine(), {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")})
    worst = check()
    if worst > 1e-4:
        sys.exit("oneDNN results differ from lax.conv_general_dilated")
    if a.zoo:
        zoo(a.zoo)
    elif not a.check:
        bench(a)


if __name__ == "__main__":
    main()
