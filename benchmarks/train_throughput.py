"""Training throughput of one network in up to four implementations, side by side.

    .venv/bin/python benchmarks/train_throughput.py --model cnn6 --batch 64
    .venv/bin/python benchmarks/train_throughput.py --model resnet50 --batch 8 --rounds 3 --steps 1

Implementations (--impl, comma-separated, default all):
  archspec       the spec compiled by archspec.model.build, trained by archspec.engine.step.make_train_step
  archspec-xla   the same with reduce_window pooling (pooling_ops.FAST_POOLS off): the
                 "before" of archspec's non-overlapping pooling lowering
  archspec-patchgrad  archspec with the opt-in patch-matmul conv weight gradient
                 (conv_ops.FAST_GRAD on) for small fan-in layers
  archspec-onednn / archspec-xlaconv  archspec with ARCHSPEC_CONV_BACKEND=onednn / =xla
                 while its step is traced (plain `archspec` uses the default, auto)
  flax           the network written by hand in Flax + a hand-written optax step (reference)
  keras          Keras 3, JAX backend, train_on_batch, jit_compile=True
  torch          PyTorch eager on CPU, one intra-op thread per core (torchN: N threads)

--isolate runs each implementation in a process of its own, started as its command would
start it: the archspec rows with the environment the `archspec` command gives itself
(archspec/hugepages.py: glibc's huge-page tunable where it helps; `archspec-4k` is archspec
without it), the others with this process's environment. Rounds stay interleaved: the
parent asks each worker in turn for a block of steps and reads back its wall and CPU time.
--settle K runs K untimed steps at the start of each block, so that a block times steps
that follow steps, as in training (on a VM whose host reclaims freed guest memory, the
first step after another process ran refaults its buffers on the host).

Every implementation trains on the same resident random batch (no input pipeline), Adam
(lr 1e-3), softmax cross-entropy. Rounds are interleaved (one block of --steps steps of each
implementation per round) and the step time is the median over rounds; ratios are the median
of per-round ratios to the hand-written Flax step, of wall time and of process CPU time (the
steadier measure on a machine shared with other jobs). Compile time is the jit lower+compile of
the step (JAX), the first train_on_batch minus a steady step (Keras); PyTorch eager has none.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

# PyTorch's OpenMP threads otherwise spin between ops and steal the cores from the JAX rounds
# (and from each other on a loaded machine): 10x slower steps were measured without this.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MODELS = {  # name -> (spec, input shape, classes)
    "lenet": ("architectures/lenet_digits.yaml", (8, 8, 1), 10),
    "cnn6": ("benchmarks/specs/cnn6.yaml", (32, 32, 3), 10),
    "resnet18": ("benchmarks/specs/resnet18_cifar.yaml", (32, 32, 3), 10),
    "resnet50": ("architectures/resnet50.yaml", (224, 224, 3), 1000),
}
IMPLS = ("archspec", "archspec-xla", "flax", "keras", "torch", "torch1")


def data(model, batch):
    import numpy as np

    _, shape, classes = MODELS[model]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *shape)).astype(np.float32)
    y = rng.integers(0, classes, batch).astype(np.int32)
    return x, y


def n_params(tree):
    import jax

    return int(sum(a.size for a in jax.tree_util.tree_leaves(tree)))


class ArchspecRunner:
    def __init__(self, model, batch, fast_pool=True, fast_conv=False, conv_backend=None):
        import jax
        import jax.numpy as jnp

        from archspec.model.build import build_model
        from archspec.layers import pooling_ops
        from archspec.spec.resolve import load_architecture
        from archspec.experiment.config import Optimizer
        from archspec.engine.optim import make_optimizer
        from archspec.engine.step import (HeadLoss, init_state, make_mesh, make_train_step,
                                         shardings)
        from archspec.layers import conv_ops

        spec = common.ROOT / MODELS[model][0]
        graph = load_architecture(spec)
        net = build_model(graph)
        tx, _ = make_optimizer(Optimizer(name="adam", lr=1e-3), 1000)
        mesh = make_mesh()
        data_sh, repl = shardings(mesh)
        x, y = data(model, batch)
        self.args = jax.device_put((jnp.asarray(x), jnp.asarray(y),
                                    jnp.ones(batch, jnp.float32)), data_sh)
        heads = [HeadLoss(h, "categorical_crossentropy", "softmax", 1.0) for h in graph.heads]
        state = init_state(net, graph, tx, 0, self.args[0][:1])
        self.params = n_params(state.params)
        self.state = jax.device_put(state, repl)
        flags = (pooling_ops.FAST_POOLS, conv_ops.FAST_GRAD)
        pooling_ops.FAST_POOLS, conv_ops.FAST_GRAD = fast_pool, fast_conv
        backend = os.environ.get("ARCHSPEC_CONV_BACKEND")
        if conv_backend:
            os.environ["ARCHSPEC_CONV_BACKEND"] = conv_backend
        try:  # the flags are read while tracing: compile now
            t = time.perf_counter()
            self.step = make_train_step(net, heads, tx, mesh).lower(self.state, *self.args).compile()
            self.compile_s = time.perf_counter() - t
        finally:
            pooling_ops.FAST_POOLS, conv_ops.FAST_GRAD = flags
            if backend is None:
                os.environ.pop("ARCHSPEC_CONV_BACKEND", None)
            else:
                os.environ["ARCHSPEC_CONV_BACKEND"] = backend
        self.run(1)

    def run(self, n):
        import jax

        for _ in range(n):
            out = self.step(self.state, *self.args)
            self.state = out[0]
        jax.block_until_ready(out[1])


class FlaxRunner:
    def __init__(self, model, batch):
        import jax
        import jax.numpy as jnp
        import optax

        import ref_flax

        x, y = data(model, batch)
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        net = ref_flax.make(model)
        tx = optax.adam(1e-3)
        p, s = ref_flax.init(net, self.x[:1])
        self.params = n_params(p)
        self.vars = (p, s, tx.init(p))
        self.rng = jax.random.key(1)
        t = time.perf_counter()
        self.step = ref_flax.make_train_step(net, tx).lower(*self.vars, self.x, self.y,
                                                            self.rng).compile()
        self.compile_s = time.perf_counter() - t
        self.run(1)

    def run(self, n):
        import jax

        for _ in range(n):
            p, s, o, loss = self.step(*self.vars, self.x, self.y, self.rng)
            self.vars = (p, s, o)
        jax.block_until_ready(loss)


class KerasRunner:
    def __init__(self, model, batch):
        import numpy as np

        import ref_keras

        self.x, self.y = data(model, batch)
        self.net = ref_keras.make(model)
        self.params = int(sum(np.prod(w.shape) for w in self.net.trainable_weights))
        t = time.perf_counter()
        self.net.train_on_batch(self.x, self.y)
        first = time.perf_counter() - t
        t = time.perf_counter()
        self.run(2)
        self.compile_s = max(first - (time.perf_counter() - t) / 2, 0.0)

    def run(self, n):
        for _ in range(n):
            self.net.train_on_batch(self.x, self.y)


class TorchRunner:
    def __init__(self, model, batch, threads=None):
        import torch

        import ref_torch

        self.threads = threads or os.cpu_count()
        torch.set_num_threads(self.threads)
        x, y = data(model, batch)
        self.x = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        self.y = torch.from_numpy(y.astype("int64"))
        self.net = ref_torch.make(model)
        self.net.train()
        self.params = sum(p.numel() for p in self.net.parameters())
        self.step = ref_torch.make_train_step(self.net)
        self.compile_s = 0.0
        self.run(2)

    def run(self, n):
        import torch

        torch.set_num_threads(self.threads)
        for _ in range(n):
            loss = self.step(self.x, self.y)
        loss.item()


class WorkerRunner:
    """An implementation in a process of its own (--isolate), driven over its stdin/stdout:
    each line in is a number of steps, each line out the worker's CPU seconds for them."""

    def __init__(self, impl, model, batch):
        import json
        import subprocess

        from archspec import hugepages

        env = dict(os.environ)
        if impl.startswith("archspec") and impl != "archspec-4k":
            env = hugepages.command_env(env) or env
        self.memory = env.get("GLIBC_TUNABLES", "") or "default"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", impl, "--model", model, "--batch", str(batch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = json.loads(self.proc.stdout.readline())
        self.compile_s, self.params = ready["compile_s"], ready["params"]

    def run(self, n, settle=0):
        self.proc.stdin.write(f"{n} {settle}\n")
        self.proc.stdin.flush()
        wall, cpu = map(float, self.proc.stdout.readline().split())
        return wall, cpu

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def serve(impl, model, batch):
    """The worker's side of WorkerRunner."""
    import json

    runner = make_runner("archspec" if impl == "archspec-4k" else impl, model, batch)
    print(json.dumps({"compile_s": runner.compile_s, "params": runner.params}), flush=True)
    for line in sys.stdin:
        n, settle = map(int, line.split())
        if settle:
            runner.run(settle)
        c, t = time.process_time(), time.perf_counter()
        runner.run(n)
        print(time.perf_counter() - t, time.process_time() - c, flush=True)


def make_runner(impl, model, batch):
    if impl == "archspec":
        return ArchspecRunner(model, batch)
    if impl == "archspec-xla":
        return ArchspecRunner(model, batch, fast_pool=False)
    if impl == "archspec-patchgrad":
        return ArchspecRunner(model, batch, fast_conv=True)
    if impl in ("archspec-onednn", "archspec-xlaconv"):
        return ArchspecRunner(model, batch, conv_backend=impl[9:].replace("xlaconv", "xla"))
    if impl.startswith("torch") and impl[5:].isdigit():  # torch1: one intra-op thread
        return TorchRunner(model, batch, int(impl[5:]))
    return {"flax": FlaxRunner, "keras": KerasRunner, "torch": TorchRunner}[impl](model, batch)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=MODELS, default="cnn6")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--impl", default=",".join(IMPLS))
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--steps", type=int, default=5, help="steps per implementation per round")
    ap.add_argument("--tag", default="", help="suffix of the results file name")
    ap.add_argument("--isolate", action="store_true",
                    help="each implementation in a process of its own, as its command starts it")
    ap.add_argument("--settle", type=int, default=0,
                    help="with --isolate: untimed steps at the start of each block")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return serve(a.worker, a.model, a.batch)
    impls = a.impl.split(",")
    if "archspec-4k" in impls and not a.isolate:
        ap.error("archspec-4k differs from archspec only in a process of its own: add --isolate")
    runners = {}
    for impl in impls:
        t = time.perf_counter()
        runners[impl] = (WorkerRunner if a.isolate else make_runner)(impl, a.model, a.batch)
        print(f"{impl:13s} ready in {time.perf_counter() - t:6.1f} s "
              f"(compile {runners[impl].compile_s:6.2f} s), {runners[impl].params:,} parameters",
              flush=True)
    cpu = {}
    block = (lambda r: r.run(a.steps, a.settle)) if a.isolate else (lambda r: r.run(a.steps))
    times = common.interleaved({k: (lambda r=r: block(r)) for k, r in runners.items()},
                               a.rounds, warmup=1, cpu=cpu)
    base = "flax" if "flax" in times else impls[0]
    rows = {}
    print(f"\n{a.model}, batch {a.batch}, {a.rounds} rounds x {a.steps} steps; "
          f"machine {common.machine()}")
    print(f"{'impl':16s} {'step ms':>9s} {'ex/s':>8s} {'compile s':>9s} {'vs ' + base:>9s} "
          f"{'cpu ms':>9s} {'cpu vs':>7s} {'params':>12s}")
    for impl, ts in times.items():
        step = common.median(ts) / a.steps
        rel = common.paired_ratio(ts, times[base])
        cpu_step = common.median(cpu[impl]) / a.steps
        cpu_rel = common.paired_ratio(cpu[impl], cpu[base])
        rows[impl] = {"step_ms": step * 1e3, "examples_per_s": a.batch / step,
                      "compile_s": runners[impl].compile_s, f"time_vs_{base}": rel,
                      "cpu_ms": cpu_step * 1e3, f"cpu_vs_{base}": cpu_rel,
                      "params": runners[impl].params,
                      "memory": getattr(runners[impl], "memory", "this process's"),
                      "round_ms": [t / a.steps * 1e3 for t in ts]}
        print(f"{impl:16s} {step * 1e3:9.2f} {a.batch / step:8.1f} "
              f"{runners[impl].compile_s:9.2f} {rel:9.3f} {cpu_step * 1e3:9.2f} {cpu_rel:7.3f} "
              f"{runners[impl].params:12,d}")
    path = common.save(f"train_{a.model}_b{a.batch}{a.tag}", {
        "model": a.model, "batch": a.batch, "rounds": a.rounds, "steps": a.steps,
        "versions": common.versions("jax", "jaxlib", "flax", "optax", "keras", "torch"),
        "isolated": a.isolate, "settle": a.settle, "results": rows})
    for r in runners.values():
        getattr(r, "close", lambda: None)()
    print(f"saved {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
