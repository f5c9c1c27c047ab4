"""An optional CPU convolution backend: oneDNN's forward, input-gradient and weight-gradient
convolutions as XLA FFI custom calls, joined by a `jax.custom_vjp` (so jit, grad, vmap,
remat and scan see an ordinary differentiable function).

Which backend runs is decided once per process and value of $ARCHSPEC_CONV_BACKEND
(default `auto`):
  auto    oneDNN when it can be used (the default JAX backend is the CPU and the library
          builds) and where it is faster: before a run's step is compiled, each of its
          convolution configurations is timed on both backends, once per machine, and keeps
          oneDNN only where it wins, alone and in the network's step (choice.py; the run's
          header says how many); one never measured takes oneDNN. Else XLA. Over a mesh of several devices each device runs
          its shard of the batch (partition.py).
  onednn  oneDNN on the CPU, an error (with the reason) if it cannot be built.
  xla     XLA's own convolution, as without this package.
`auto` is the default: without the extra it is XLA, so nothing changes there. oneDNN's
results are bitwise reproducible for a fixed thread count (the same inputs give the same
bits, run after run, and a resumed run equals an uninterrupted one), but differ from XLA's
by float summation order (~1e-6 relative): comparisons of archspec's XLA lowerings bit for
bit against lax pin `xla` (tests/layers/test_pooling_ops.py).
Whichever is chosen, only float32 convolutions with channels-last dimension numbers
(Flax's) and no batch groups take oneDNN; everything else stays XLA's. A convolution over a
dilated input (a transposed convolution) runs as the input gradient of the strided
convolution it transposes. Padding must lie between 0 and the kernel's extent less one
(see `_padding_within`).

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
import jax.numpy as jnp
import numpy as np
from jax import lax

from archspec.errors import ArchspecError
from archspec.layers.onednn import build, partition

ENV = "ARCHSPEC_CONV_BACKEND"
CHOICES = ("auto", "onednn", "xla")
DEFAULT = "auto"
_decided: dict[str, tuple[str, str]] = {}


class BackendError(ArchspecError):
    """$ARCHSPEC_CONV_BACKEND names no backend, or asks for oneDNN where it cannot run."""

    exit_code = 2


def requested() -> str:
    value = (os.environ.get(ENV) or DEFAULT).strip().lower()
    if value not in CHOICES:
        raise BackendError(f"{ENV}={value[:40]!r} is not a convolution backend",
                           f"set {ENV} to one of {', '.join(CHOICES)}, or unset it (auto)")
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
        raise BackendError(f"{ENV}=onednn, but oneDNN convolutions cannot run: {why}",
                           f"unset {ENV} (auto) or set it to xla to use XLA's convolutions")
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
    except BackendError as exc:
        return f"error: {exc.message}"
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
    if dimension_numbers != channels_last_numbers(lhs.ndim) or 0 in lhs.shape + rhs.shape:
        return False
    if rhs.shape[n] * feature_group_count != lhs.shape[-1] or rhs.shape[-1] % feature_group_count:
        return False
    dil = tuple(rhs_dilation) if rhs_dilation is not None else (1,) * n
    if lhs_dilation is not None and any(d != 1 for d in lhs_dilation):
        return _transposable(lhs.shape, rhs.shape, window_strides, padding, tuple(lhs_dilation),
                             dil)
    pads = explicit_padding(lhs.shape, rhs.shape, tuple(window_strides), padding, dil)
    return (len(pads) == n and _padding_within(rhs.shape, pads, dil)
            and all(s >= 1 for s in window_strides) and all(d >= 1 for d in dil)
            and all(o >= 1 for o in output_shape(lhs.shape, rhs.shape, window_strides, pads,
                                                 dil)[1:-1]))


def _transposable(xs, ws, window_strides, padding, strides, dil) -> bool:
    """Whether a convolution over an input dilated by `strides` (a transposed convolution)
    is the input gradient of a strided convolution oneDNN runs: unit window strides,
    explicit padding, and that convolution's padding (`transpose_padding`) within bounds."""
    n = len(xs) - 2
    if isinstance(padding, str) or len(padding) != n or any(s != 1 for s in window_strides):
        return False
    if min(strides) < 1 or min(dil) < 1:
        return False
    return (_padding_within(ws, transpose_padding(ws, padding, dil), dil)
            and all(o >= 1 for o in transposed_shape(xs, ws, strides, padding, dil)[1:-1]))


def _padding_within(ws, pads, dil) -> bool:
    """Each pad from 0 to the kernel's extent less one. oneDNN 3.2's input gradient is wrong
    (even reads unset memory) for some convolutions padded by the extent or more, whose
    edge outputs see only padding; XLA computes those."""
    return all(0 <= lo < (k - 1) * d + 1 and 0 <= hi < (k - 1) * d + 1
               for k, d, (lo, hi) in zip(ws, dil, pads))


def transpose_padding(ws, pads, dil):
    """The padding of the strided convolution whose input gradient is the convolution of the
    stride-dilated input with padding `pads`."""
    return tuple(((k - 1) * d - lo, (k - 1) * d - hi) for k, d, (lo, hi) in zip(ws, dil, pads))


def transposed_shape(xs, ws, strides, pads, dil):
    n = len(xs) - 2
    spatial = [(xs[1 + i] - 1) * strides[i] + 1 + pads[i][0] + pads[i][1] - (ws[i] - 1) * dil[i]
               for i in range(n)]
    return (xs[0], *spatial, ws[-1])


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


def conv_transpose(x, w, strides, pads, dil, groups=1):
    """`lax.conv_general_dilated` of x dilated by `strides` (lhs_dilation) with w, explicit
    padding `pads`, Flax's dimension numbers: a transposed convolution, computed as oneDNN's
    input gradient of the strided convolution it transposes (no multiplications by the
    inserted zeros). That convolution's kernel is w flipped in space with its input and
    output channels swapped within each group."""
    lib = build.load()
    if isinstance(lib, str):
        raise RuntimeError(f"oneDNN convolutions cannot run: {lib}")
    n = x.ndim - 2
    *k, ci, co = w.shape
    wt = jnp.flip(w, tuple(range(n))).reshape(*k, ci, groups, co // groups)
    wt = jnp.swapaxes(wt, n, n + 2).reshape(*k, co // groups, groups * ci)
    adj = transpose_padding(k, pads, dil)
    cfg = (tuple(int(s) for s in strides), tuple((int(a), int(b)) for a, b in adj),
           tuple(int(d) for d in dil), int(groups))
    return _transposed(x, wt, cfg, transposed_shape(x.shape, w.shape, strides, pads, dil))


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _transposed(x, wt, cfg, shape):
    return partition.call(partition.BWD_DATA, shape, x, wt, cfg)


def _t_fwd(x, wt, cfg, shape):
    return _transposed(x, wt, cfg, shape), (x, wt)


def _t_bwd(cfg, shape, res, g):
    # y is linear in x and wt, the adjoint of the strided convolution F(·, wt) that maps
    # y's shape onto x's: dx = F(g, wt), dwt = F's weight gradient at input g and output x
    x, wt = res
    return (partition.call(partition.FWD, x.shape, g, wt, cfg),
            partition.call(partition.BWD_WEIGHTS, wt.shape, g, x, cfg))


_transposed.defvjp(_t_fwd, _t_bwd)


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
