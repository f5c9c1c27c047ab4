"""An optional CPU convolution backend: oneDNN's forward, input-gradient and weight-gradient
convolutions as XLA FFI custom calls, joined by a `jax.custom_vjp` (so jit, grad, vmap,
remat and scan see an ordinary differentiable function).

Which backend runs is decided once per process and value of $ARCHSPEC_CONV_BACKEND
(default `auto`):
  auto    oneDNN when it can be used: the default JAX backend is the CPU and the library
          builds; else XLA. Over a mesh of several devices each device runs its shard of the
          batch (partition.py).
  onednn  oneDNN on the CPU, an error (with the reason) if it cannot be built.
  xla     XLA's own convolution, as without this package.
`auto` is the default: without the extra it is XLA, so nothing changes there. oneDNN's
results are bitwise reproducible for a fixed thread count (the same inputs give the same
bits, run after run, and a resumed run equals an uninterrupted one), but differ from XLA's
by float summation order (~1e-6 relative): comparisons of archspec's XLA lowerings bit for
bit against lax pin `xla` (tests/layers/test_pooling_ops.py).
Whichever is chosen, only float32 convolutions with channels-last dimension numbers
(Flax's), no input dilation and no batch groups take oneDNN; everything else stays XLA's.

oneDNN 3 comes from the optional extra `pip install 'archspec[onednn]'` (the CPU, GNU OpenMP
wheels `onednn-cpu-gomp` and `onednn-devel-cpu-gomp`); the handlers (conv.cc) are compiled
with g++ on first use into $XDG_CACHE_HOME/archspec/ (build.py). Without the wheels, the
compiler or a CPU, `auto` is XLA and archspec runs as it always did; `describe()` says which
backend runs and why (`archspec bench` prints it). If oneDNN is installed but its build
fails, `auto` says so once on stderr."""
from __future__ import annotations

import os
import sys
from functools import partial

import jax
import numpy as np
from jax import lax

from archspec.layers.onednn import build, partition

ENV = "ARCHSPEC_CONV_BACKEND"
CHOICES = ("auto", "onednn", "xla")
DEFAULT = "auto"
_decided: dict[str, tuple[str, str]] = {}


def requested() -> str:
    value = (os.environ.get(ENV) or DEFAULT).strip().lower()
    if value not in CHOICES:
        raise ValueError(f"{ENV}={value!r}: expected one of {', '.join(CHOICES)}")
    return value


def decide() -> tuple[str, str]:
    """("onednn" | "xla", why), decided once per process and value of $ARCHSPEC_CONV_BACKEND."""
    want = requested()
    if want in _decided:
        return _decided[want]
    if want == "xla":
        why = f"{ENV}=xla"
    elif jax.default_backend() != "cpu":
        why = f"the JAX backend is {jax.default_backend()}, oneDNN serves the CPU only"
    else:
        lib = build.load()
        if not isinstance(lib, str):
            _decided[want] = ("onednn", "oneDNN " + _version(lib))
            return _decided[want]
        why = lib
        if want == "auto" and build.find_onednn() is not None:
            print(f"archspec: oneDNN convolutions unavailable, using XLA's: {why}",
                  file=sys.stderr)
    if want == "onednn":
        raise RuntimeError(f"{ENV}=onednn, but oneDNN convolutions cannot run: {why}")
    _decided[want] = ("xla", why)
    return _decided[want]


def _version(lib) -> str:
    try:
        import ctypes

        class Version(ctypes.Structure):
            _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int),
                        ("patch", ctypes.c_int), ("hash", ctypes.c_char_p),
                        ("cpu_runtime", ctypes.c_uint), ("gpu_runtime", ctypes.c_uint)]
        lib.dnnl_version.restype = ctypes.POINTER(Version)
        v = lib.dnnl_version().contents
        return f"{v.major}.{v.minor}.{v.patch}"
    except (AttributeError, OSError, ValueError):
        return "3"


def describe() -> str:
    """One line: the convolution backend this process uses, and why."""
    try:
        name, why = decide()
    except (RuntimeError, ValueError) as exc:
        return f"error: {exc}"
    return f"{name} ({why})"


def active() -> bool:
    return decide()[0] == "onednn"


def channels_last_numbers(ndim: int) -> lax.ConvDimensionNumbers:
    lhs = (0, ndim - 1) + tuple(range(1, ndim - 1))
    rhs = (ndim - 1, ndim - 2) + tuple(range(0, ndim - 2))
    return lax.ConvDimensionNumbers(lhs, rhs, lhs)


def explicit_padding(lhs_shape, rhs_shape, strides, padding, rhs_dilation):
    """Padding as ((lo, hi), ...) for a string ('SAME', 'VALID', ...) or pairs."""
    n = len(lhs_shape) - 2
    if isinstance(padding, str):
        window = [(k - 1) * d + 1 for k, d in zip(rhs_shape[:n], rhs_dilation)]
        padding = lax.padtype_to_pads(lhs_shape[1:-1], window, strides, padding)
    return tuple((int(lo), int(hi)) for lo, hi in padding)


def supports(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
             dimension_numbers=None, feature_group_count=1, batch_group_count=1,
             preferred_element_type=None) -> bool:
    """Whether oneDNN can compute this `lax.conv_general_dilated` (the backend aside)."""
    n = lhs.ndim - 2
    if not 1 <= n <= 3 or lhs.dtype != np.float32 or rhs.dtype != np.float32:
        return False
    if preferred_element_type not in (None, np.float32) or batch_group_count != 1:
        return False
    if lhs_dilation is not None and any(d != 1 for d in lhs_dilation):
        return False
    if dimension_numbers != channels_last_numbers(lhs.ndim) or 0 in lhs.shape + rhs.shape:
        return False
    if rhs.shape[n] * feature_group_count != lhs.shape[-1] or rhs.shape[-1] % feature_group_count:
        return False
    dil = tuple(rhs_dilation) if rhs_dilation is not None else (1,) * n
    pads = explicit_padding(lhs.shape, rhs.shape, tuple(window_strides), padding, dil)
    return (len(pads) == n and all(lo >= 0 and hi >= 0 for lo, hi in pads)
            and all(s >= 1 for s in window_strides) and all(d >= 1 for d in dil)
            and all(o >= 1 for o in output_shape(lhs.shape, rhs.shape, window_strides, pads,
                                                 dil)[1:-1]))


def output_shape(xs, ws, strides, pads, dil):
    n = len(xs) - 2
    spatial = [(xs[1 + i] + pads[i][0] + pads[i][1] - (ws[i] - 1) * dil[i] - 1) // strides[i] + 1
               for i in range(n)]
    return (xs[0], *spatial, ws[-1])


def conv(x, w, strides, pads, dil, groups=1):
    """Channels-last convolution on oneDNN: x (N, *spatial, C), w (*kernel, C / groups, O),
    explicit non-negative padding pairs; the same numbers as `lax.conv_general_dilated` with
    Flax's dimension numbers, and its gradients. Registers the handlers on first use."""
    lib = build.load()
    if isinstance(lib, str):
        raise RuntimeError(f"oneDNN convolutions cannot run: {lib}")
    cfg = (tuple(int(s) for s in strides), tuple((int(a), int(b)) for a, b in pads),
           tuple(int(d) for d in dil), int(groups))
    return _conv(x, w, cfg)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(x, w, cfg):
    strides, pads, dil, _ = cfg
    return partition.call(partition.FWD, output_shape(x.shape, w.shape, strides, pads, dil),
                          x, w, cfg)


def _fwd(x, w, cfg):
    return _conv(x, w, cfg), (x, w)


def _bwd(cfg, res, g):
    x, w = res
    dx = partition.call(partition.BWD_DATA, x.shape, g, w, cfg)
    dw = partition.call(partition.BWD_WEIGHTS, w.shape, x, g, cfg)
    return dx, dw


_conv.defvjp(_fwd, _bwd)


def impl_names(x_shape, w_shape, strides, pads, dil, groups=1) -> list[str]:
    """The oneDNN implementation chosen for the forward, input- and weight-gradient of a
    configuration (e.g. 'brgconv:avx512_core'), for benchmarks."""
    import ctypes

    lib = build.load()
    if isinstance(lib, str):
        return [lib] * 3
    y_shape = output_shape(x_shape, w_shape, strides, pads, dil)
    arr = lambda v: (ctypes.c_int64 * len(v))(*v)  # noqa: E731
    args = [arr(x_shape), arr(w_shape), arr(y_shape), arr(strides), arr([p[0] for p in pads]),
            arr([p[1] for p in pads]), arr(dil)]
    return [lib.archspec_onednn_impl(k, len(x_shape), *args, groups).decode() for k in range(3)]
