"""How fast this machine trains a spec, and how close that is to its peak.

Compiles the real train step (archspec.engine.step.make_train_step, Adam) for a resident
random batch, then reports compile time, median step time, examples/s, achieved FLOP/s,
utilisation against the device's matmul peak measured in the same run, and peak memory.
The command and its table: archspec/commands/bench.py, archspec/ui/bench_table.py.

FLOPs are an estimate: training = 3 × forward (forward, input gradient, weight gradient),
2 FLOPs per multiply-accumulate, forward MACs from the resolver (conv and dense layers).
"""
from __future__ import annotations

import math
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from archspec.use import estimate


@dataclass
class BenchResult:
    spec: str
    name: str
    batch: int
    precision: str
    devices: int
    device: str
    params: int
    compile_s: float
    step_s: float            # median over timed steps
    step_s_min: float
    step_s_max: float
    steps: int
    examples_per_s: float
    forward_macs_per_example: int
    train_flops_per_step: float   # 3 × forward MACs × 2 × batch (an estimate)
    achieved_flops: float         # train_flops_per_step / step_s
    peak_matmul_flops: float      # measured: large square matmul in the compute dtype
    matmul_size: int
    utilisation: float            # achieved_flops / peak_matmul_flops
    peak_memory_bytes: int
    memory_source: str            # "device" (memory_stats) or "process RSS"
    step_memory_bytes: int | None  # XLA's memory analysis: arguments + outputs + temporaries
    flops_note: str = "training FLOPs = 3 x forward MACs x 2 FLOPs per MAC per example"
    conv_choice: dict | None = None  # `auto`: the verdicts of the step's convolutions

    def to_dict(self) -> dict:
        return asdict(self)


def _random_batch(graph, batch: int, seed: int = 0):
    """(x, y, heads): inputs of the graph's shape and dtype and targets for its heads' losses."""
    import numpy as np

    from archspec.engine.losses import DEFAULT_FOR_OUTPUT
    from archspec.engine.step import HeadLoss

    rng = np.random.default_rng(seed)
    (inp,) = graph.inputs.values()
    shape = (batch, *inp.shape)
    x = (rng.integers(0, 2, shape).astype(np.int32) if inp.dtype == "int32"
         else rng.normal(size=shape).astype(np.float32))
    first = next(iter(graph.heads.values()))
    kind = DEFAULT_FOR_OUTPUT[first.output]
    if kind == "categorical_crossentropy":
        # a class per example, or per position for a per-pixel head (a U-Net's (H, W, C))
        y = rng.integers(0, first.shape[-1], (batch, *first.shape[:-1])).astype(np.int32)
    else:
        y = rng.uniform(size=(batch, *first.shape)).astype(np.float32)
    # Every head that can share the first head's targets trains; others are left out.
    heads = [HeadLoss(name, DEFAULT_FOR_OUTPUT[h.output], h.output, h.loss_weight)
             for name, h in graph.heads.items()
             if DEFAULT_FOR_OUTPUT[h.output] == kind and tuple(h.shape) == tuple(first.shape)]
    return x, y, heads


def _peak_memory(device) -> tuple[int, str]:
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - backends without stats raise or return None
        stats = None
    if stats and stats.get("peak_bytes_in_use"):
        return int(stats["peak_bytes_in_use"]), "device"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process RSS"


def _step_memory(compiled) -> int | None:
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend has it
        return None
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
               - m.alias_size_in_bytes)


def bench(spec: Path, batch: int = 32, steps: int = 10, precision: str = "float32",
          warmup: int = 2, matmul_size: int = 2048, input_shape: tuple | None = None,
          graph=None, scan_blocks: bool = False) -> BenchResult:
    import jax
    import jax.numpy as jnp

    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture
    from archspec.experiment.config import Optimizer
    from archspec.engine.optim import make_optimizer
    from archspec.engine.step import init_state, make_mesh, make_train_step, shardings

    if precision not in ("float32", "bf16"):
        raise ValueError(f"precision must be float32 or bf16, not {precision!r}")
    if batch < 1 or steps < 1:
        raise ValueError("batch and steps must be positive")
    graph = graph or load_architecture(spec, input_shape=input_shape)
    if len(graph.inputs) != 1:
        raise ValueError("bench trains single-input architectures")
    mesh = make_mesh()
    n_dev = mesh.devices.size
    if batch % n_dev:
        raise ValueError(f"batch {batch} does not divide across {n_dev} devices")
    dtype = jnp.bfloat16 if precision == "bf16" else None
    model = build_model(graph, compute_dtype=dtype, scan_blocks=scan_blocks)
    from archspec.train.setup import choose_convolutions

    choice = choose_convolutions(model, graph, batch, batch)  # before the step is traced
    tx, _ = make_optimizer(Optimizer(name="adam", lr=1e-3), 1000)
    data_sh, repl = shardings(mesh)
    x, y, heads = _random_batch(graph, batch)
    args = jax.device_put((jnp.asarray(x), jnp.asarray(y), jnp.ones(batch, jnp.float32)),
                          data_sh)
    state = init_state(model, graph, tx, 0, args[0][:1])
    params = int(sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(state.params)))
    state = jax.device_put(state, repl)

    t = time.perf_counter()
    compiled = make_train_step(model, heads, tx, mesh).lower(state, *args).compile()
    compile_s = time.perf_counter() - t

    times = _time_steps(compiled, state, args, warmup, steps)
    step_s = statistics.median(times)

    macs = graph.total("macs")
    train_flops = estimate.train_flops(macs, batch)
    achieved = train_flops / step_s
    peak = estimate.matmul_peak(matmul_size, jnp.bfloat16 if precision == "bf16" else jnp.float32)
    device = jax.devices()[0]
    mem, source = _peak_memory(device)
    return BenchResult(
        spec=str(spec), name=graph.name, batch=batch, precision=precision, devices=n_dev,
        device=f"{device.platform}:{getattr(device, 'device_kind', '')}", params=params,
        compile_s=compile_s, step_s=step_s, step_s_min=min(times), step_s_max=max(times),
        steps=steps, examples_per_s=batch / step_s, forward_macs_per_example=macs,
        train_flops_per_step=train_flops, achieved_flops=achieved, peak_matmul_flops=peak,
        matmul_size=matmul_size, utilisation=achieved / peak, peak_memory_bytes=mem,
        memory_source=source, step_memory_bytes=_step_memory(compiled), conv_choice=choice)


def _time_steps(compiled, state, args, warmup: int, steps: int) -> list[float]:
    """Seconds of each of `steps` steps, timed one by one after `warmup` untimed ones."""
    import jax

    for _ in range(warmup):
        out = compiled(state, *args)
        state = out[0]
    jax.block_until_ready(out[1] if warmup else state)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        out = compiled(state, *args)
        jax.block_until_ready(out[1])
        times.append(time.perf_counter() - t)
        state = out[0]
    return times


def size_problem(graph, batch: int, matmul_size: int) -> tuple[str, str] | None:
    """(flag, why) when a batch or the peak matmul could not fit in memory: checked before
    anything is allocated, against the resolver's bound on layer outputs."""
    from archspec.fmt import BYTES_PER_VALUE, fmt_bytes, prod
    from archspec.spec.resolve import MAX_ACTIVATIONS

    values = batch * sum(prod(n.shape or ()) for n in graph.nodes.values())
    if values > MAX_ACTIVATIONS:
        return "--batch", (f"a batch of {batch:,} holds {values:,} layer output values "
                           f"(~{fmt_bytes(values * BYTES_PER_VALUE)} in float32); at most "
                           f"{MAX_ACTIVATIONS:,}")
    if 3 * matmul_size ** 2 > MAX_ACTIVATIONS:  # two operands and the product
        return "--matmul-size", (f"three {matmul_size:,}×{matmul_size:,} matrices take "
                                 f"~{fmt_bytes(3 * BYTES_PER_VALUE * matmul_size ** 2)}; at "
                                 f"most {math.isqrt(MAX_ACTIVATIONS // 3):,}")
    return None
