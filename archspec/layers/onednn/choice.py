"""Which convolutions take oneDNN under `auto`: the ones it runs faster, measured.

oneDNN wins on large 2-D convolutions and loses on small ones (the MNIST-1D CNN's 1-D
convolutions train 1.5x slower through it), so availability is not a reason to use it.
`calibrate` collects the convolutions a function traces (their shapes and geometry), times
each one's forward and both gradients on either backend, and keeps oneDNN for those where it
is faster by more than 5%.

A convolution alone is not the step it runs in: between XLA's fused ops a custom call costs
layout copies and lost fusions, so a network whose convolutions are small can train slower
with the ones oneDNN wins alone (the MNIST-1D CNN: 1.47 against 1.07 ms a step). Where the
per-convolution plan uses oneDNN at all, `calibrate` then times the whole forward and backward
pass both ways, that plan against XLA everywhere, and keeps oneDNN only if the network is
faster with it (the `net:` verdicts, keyed by the network's set of configurations).

The verdicts are kept in a JSON file in the cache folder, keyed by the configuration, the CPU,
the thread count and the versions, so a configuration is measured once per machine. A
configuration never measured takes oneDNN (the `onednn` backend, and `auto` before any
calibration, or with $ARCHSPEC_CONV_MEASURE=0)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

MEASURE_ENV = "ARCHSPEC_CONV_MEASURE"  # "0": no measuring (auto takes oneDNN wherever it can)
MARGIN = 0.95       # oneDNN is kept when its time is below 95% of XLA's
REPEATS = 5         # timed runs per backend (the minimum counts), after one warm-up
STEP_BUDGET_S = 3.0  # a network's plans are timed for 2+ rounds, then until this is spent

_lock = threading.Lock()
_verdicts: dict[str, bool] | None = None   # key -> oneDNN faster, from the cache file
_seen: set | None = None                   # configurations met while collecting
_on_xla: set[str] = set()   # configurations whose network is faster without oneDNN
_layers: dict[str, set] = {}  # configuration -> the layers it was met in (while collecting)
_xla_only = False           # set while the all-XLA plan of a network is traced


def key(xs, ws, strides, pads, dil, groups, transposed) -> str | None:
    """The configuration as text; None for a symbolic shape (an export at any batch size),
    which is never measured."""
    values = [*xs, *ws, *strides, *(v for p in pads for v in p), *dil]
    if not all(isinstance(v, (int, np.integer)) for v in values):
        return None
    return json.dumps([[int(v) for v in xs], [int(v) for v in ws], [int(v) for v in strides],
                       [[int(a), int(b)] for a, b in pads], [int(v) for v in dil],
                       int(groups), bool(transposed)])


def met(k: str | None) -> None:
    """A convolution traced with this configuration (recorded while collecting), and the
    layer it is in (the Flax module being applied: its name is the node's id)."""
    if _seen is not None and k is not None:
        _seen.add(k)
        from flax.linen import module as flax_module

        stack = flax_module._context.module_stack
        name = getattr(stack[-1], "name", None) if stack else None
        if name:
            _layers.setdefault(k, set()).add(name)


def prefers_onednn(k: str | None) -> bool:
    """The verdict for a configuration: oneDNN unless measured slower, alone or in its
    network."""
    if _xla_only or k in _on_xla:
        return False
    return k is None or _load().get(k, True)


def measuring() -> bool:
    """False with $ARCHSPEC_CONV_MEASURE=0."""
    return os.environ.get(MEASURE_ENV, "1").strip() != "0"


def calibrate(trace, compile_step=None) -> dict | None:
    """Measure every configuration `trace()` (a jax.eval_shape of the step, say) meets that
    has no verdict yet, then, given `compile_step`, the network's plan in context (see the
    module's doc). Returns {"measured", "onednn", "xla"} counts over all it met, and
    "network": "xla" where the network overruled oneDNN; or None with
    $ARCHSPEC_CONV_MEASURE=0 (the test suite: the same backend on every machine, and no
    time spent measuring).
    `trace` must trace a new function: JAX keeps traces by function, and a kept trace
    calls no convolution. `compile_step()` traces and compiles a new function too, and
    returns one that runs it once on fixed arrays and waits for the result."""
    global _seen
    if not measuring():
        return None
    with _lock:
        _seen = set()
        _layers.clear()
        try:
            trace()
            found = sorted(_seen)
            layers = {k: sorted(v) for k, v in _layers.items()}
        finally:
            _seen = None
    verdicts = _load()
    new = [k for k in found if k not in verdicts]
    if new:
        _say(f"timing {len(new)} convolution shape(s) on oneDNN and on XLA")
    for k in new:
        verdicts[k] = _measure(k)
    if new:
        _save(verdicts)
    faster = sum(verdicts[k] for k in found)
    counts = {"measured": len(new), "onednn": faster, "xla": len(found) - faster,
              "layers": _by_backend(found, layers, lambda k: verdicts[k])}
    if compile_step is None or not faster:
        return counts
    net = "net:" + hashlib.sha256(json.dumps(found).encode()).hexdigest()[:16]
    if net not in verdicts:
        _say("timing this network's step with and without oneDNN")
        verdicts[net] = _faster_in_context(compile_step)
        counts["measured"] += 1
        _save(verdicts)
    if not verdicts[net]:
        _on_xla.update(found)
        counts.update(onednn=0, xla=len(found), network="xla", alone=faster,
                      layers=_by_backend(found, layers, lambda k: False))
    return counts


def _by_backend(found, layers, on_onednn) -> dict:
    """{"onednn": [layer, ...], "xla": [...]}: which layers' convolutions run where."""
    out = {"onednn": set(), "xla": set()}
    for k in found:
        out["onednn" if on_onednn(k) else "xla"].update(layers.get(k, ()))
    return {b: sorted(v) for b, v in out.items()}


def _say(what: str) -> None:
    """A note on stderr: a first run on a machine waits for these measurements."""
    sys.stderr.write(f"{what} (once on this machine)...\n")
    sys.stderr.flush()


def _faster_in_context(compile_step) -> bool:
    """Whether the network's step with the per-convolution plan beats XLA everywhere: both
    compiled, then timed in alternation (drift on a shared machine hits both alike)."""
    global _xla_only
    plan = compile_step()
    with _lock:
        _xla_only = True
        try:
            xla = compile_step()
        finally:
            _xla_only = False
    runs, best = (plan, xla), [float("inf")] * 2
    for run in runs:
        run()  # warm-up: first-call allocations
    start = time.perf_counter()
    for i in range(REPEATS):
        if i >= 2 and time.perf_counter() - start > STEP_BUDGET_S:
            break
        for j, run in enumerate(runs):
            t0 = time.perf_counter()
            run()
            best[j] = min(best[j], time.perf_counter() - t0)
    return best[0] < MARGIN * best[1]


def _measure(k: str) -> bool:
    from archspec.layers import onednn

    xs, ws, strides, pads, dil, groups, transposed = json.loads(k)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=xs), jnp.float32)
    w = jnp.asarray(rng.normal(size=ws), jnp.float32)
    pads = tuple(tuple(p) for p in pads)

    def run(backend):
        def f(x, w):
            if backend == "xla":
                return jnp.sum(jax.lax.conv_general_dilated(
                    x, w, (1,) * len(strides) if transposed else strides, pads,
                    lhs_dilation=strides if transposed else None, rhs_dilation=dil,
                    dimension_numbers=onednn.channels_last_numbers(len(xs)),
                    feature_group_count=groups) ** 2)
            conv = onednn.conv_transpose if transposed else onednn.conv
            return jnp.sum(conv(x, w, strides, pads, dil, groups) ** 2)
        step = jax.jit(jax.grad(f, (0, 1)))
        jax.block_until_ready(step(x, w))
        best = float("inf")
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            jax.block_until_ready(step(x, w))
            best = min(best, time.perf_counter() - t0)
        return best

    return run("onednn") < MARGIN * run("xla")


def _path():
    from archspec.layers.onednn import build

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    tag = f"{cpu}|{os.cpu_count()}|{os.environ.get('OMP_NUM_THREADS')}|{jax.__version__}"
    digest = hashlib.sha256(tag.encode()).hexdigest()[:16]
    return build.cache_dir() / f"conv-choices-{digest}.json"


def _load() -> dict:
    global _verdicts
    if _verdicts is None:
        try:
            _verdicts = {k: bool(v) for k, v in json.loads(_path().read_text()).items()}
        except (OSError, ValueError, AttributeError):
            _verdicts = {}
    return _verdicts


def _save(verdicts: dict) -> None:
    path = _path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(verdicts, indent=0))
        tmp.replace(path)
    except OSError:
        pass  # not kept: measured again next time
