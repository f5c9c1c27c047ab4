"""Which convolutions take oneDNN under `auto`: the ones it runs faster, measured.

oneDNN wins on large 2-D convolutions and loses on small ones (the MNIST-1D CNN's 1-D
convolutions train 1.5x slower through it), so availability is not a reason to use it.
`calibrate` collects the convolutions a function traces (their shapes and geometry), times
each one's forward and both gradients on either backend, and keeps oneDNN for those where it
is faster by more than 5%. The verdicts are kept in a JSON file in the cache folder, keyed by
the configuration, the CPU, the thread count and the versions, so a configuration is measured
once per machine. A configuration never measured takes oneDNN (the `onednn` backend, and
`auto` before any calibration, or with $ARCHSPEC_CONV_MEASURE=0)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

MEASURE_ENV = "ARCHSPEC_CONV_MEASURE"  # "0": no measuring (auto takes oneDNN wherever it can)
MARGIN = 0.95       # oneDNN is kept when its time is below 95% of XLA's
REPEATS = 5         # timed runs per backend (the minimum counts), after one warm-up

_lock = threading.Lock()
_verdicts: dict[str, bool] | None = None   # key -> oneDNN faster, from the cache file
_seen: set | None = None                   # configurations met while collecting


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
    """A convolution traced with this configuration (recorded while collecting)."""
    if _seen is not None and k is not None:
        _seen.add(k)


def prefers_onednn(k: str | None) -> bool:
    """The verdict for a configuration: oneDNN unless measured slower."""
    return k is None or _load().get(k, True)


def measuring() -> bool:
    """False with $ARCHSPEC_CONV_MEASURE=0."""
    return os.environ.get(MEASURE_ENV, "1").strip() != "0"


def calibrate(trace) -> dict | None:
    """Measure every configuration `trace()` (a jax.eval_shape of the step, say) meets that
    has no verdict yet. Returns {"measured", "onednn", "xla"} counts over all it met, or
    None with $ARCHSPEC_CONV_MEASURE=0 (the test suite: the same backend on every machine,
    and no time spent measuring).
    `trace` must trace a new function: JAX keeps traces by function, and a kept trace
    calls no convolution."""
    global _seen
    if not measuring():
        return None
    with _lock:
        _seen = set()
        try:
            trace()
            found = sorted(_seen)
        finally:
            _seen = None
    verdicts = _load()
    new = [k for k in found if k not in verdicts]
    for k in new:
        verdicts[k] = _measure(k)
    if new:
        _save(verdicts)
    faster = sum(verdicts[k] for k in found)
    return {"measured": len(new), "onednn": faster, "xla": len(found) - faster}


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
