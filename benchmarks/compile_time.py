"""Train-step compile time of a spec: trace (jax.jit(...).lower) and XLA compile, separately.

    .venv/bin/python benchmarks/compile_time.py architectures/resnet152.yaml --batch 8

The step is archspec's own (archspec.engine.step.make_train_step, Adam); nothing runs.
--scan builds with scan_blocks=True (runs of identical repeated blocks become one
jax.lax.scan over stacked parameters; opt-in, the parameter tree changes, counts do not);
--remat also wraps each scanned block in jax.checkpoint. XLA's memory analysis of the
compiled step (temporaries = activations kept for the backward pass) is reported too.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tag", default="")
    ap.add_argument("--scan", action="store_true")
    ap.add_argument("--remat", action="store_true")
    a = ap.parse_args()
    t0 = time.perf_counter()
    import jax

    from archspec.use.bench import _random_batch
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture
    from archspec.experiment.config import Optimizer
    from archspec.engine.optim import make_optimizer
    from archspec.engine.step import init_state, make_mesh, make_train_step, shardings

    graph = load_architecture(a.spec)
    model = build_model(graph, scan_blocks=a.scan or a.remat, remat_blocks=a.remat)
    mesh = make_mesh()
    data_sh, repl = shardings(mesh)
    tx, _ = make_optimizer(Optimizer(name="adam", lr=1e-3), 1000)
    x, y, heads = _random_batch(graph, a.batch)
    t = time.perf_counter()
    state = jax.eval_shape(lambda x: init_state(model, graph, tx, 0, x), x[:1])
    init_s = time.perf_counter() - t
    args = (jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=data_sh),
            jax.ShapeDtypeStruct(y.shape, y.dtype, sharding=data_sh),
            jax.ShapeDtypeStruct((a.batch,), "float32", sharding=data_sh))
    state = jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl), state)
    step = make_train_step(model, heads, tx, mesh)
    t = time.perf_counter()
    lowered = step.lower(state, *args)
    trace_s = time.perf_counter() - t
    t = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t
    mem = compiled.memory_analysis()
    out = {"spec": a.spec, "batch": a.batch, "layers": len(graph.layers),
           "abstract_init_s": init_s, "trace_lower_s": trace_s, "xla_compile_s": compile_s,
           "scan_blocks": a.scan or a.remat, "remat_blocks": a.remat,
           "total_s": trace_s + compile_s, "process_s": time.perf_counter() - t0,
           "temp_bytes": getattr(mem, "temp_size_in_bytes", None),
           "temp_bytes_per_example": getattr(mem, "temp_size_in_bytes", 0) / a.batch,
           "argument_bytes": getattr(mem, "argument_size_in_bytes", None),
           "versions": common.versions("jax", "jaxlib", "flax")}
    print(out)
    common.save(f"compile_{Path(a.spec).stem}_b{a.batch}{a.tag}", out)


if __name__ == "__main__":
    main()
