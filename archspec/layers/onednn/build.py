"""Compiling conv.cc on first use: find oneDNN 3 (headers and library), find a C++ compiler,
build into $XDG_CACHE_HOME/archspec/onednn-<hash>/ (default ~/.cache), load it and register
its handlers with XLA. Every failure is a sentence, never an exception: the caller then keeps
XLA's convolution.

oneDNN is looked for under $ARCHSPEC_ONEDNN_PREFIX, then the Python environment's prefix
(where the `onednn-cpu-gomp` + `onednn-devel-cpu-gomp` wheels put lib/ and include/), then
/usr/local and /usr (Debian's libdnnl-dev is oneDNN 2, which lacks the 3.x API and is
skipped)."""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from archspec.cachedirs import cache_home

SOURCE = Path(__file__).resolve().with_name("conv.cc")
TARGETS = (("archspec_onednn_conv_fwd", "OnednnConvFwd"),
           ("archspec_onednn_conv_bwd_data", "OnednnConvBwdData"),
           ("archspec_onednn_conv_bwd_weights", "OnednnConvBwdWeights"))

_lock = threading.Lock()
_loaded: ctypes.CDLL | str | None = None


def find_onednn() -> tuple[Path, Path] | None:
    """(include dir, lib dir) of an installed oneDNN 3 with its C++ headers, or None."""
    prefixes = [os.environ.get("ARCHSPEC_ONEDNN_PREFIX"), sys.prefix, sys.base_prefix,
                "/usr/local", "/usr"]
    for prefix in dict.fromkeys(p for p in prefixes if p):
        inc = Path(prefix, "include")
        if not (inc / "oneapi/dnnl/dnnl.hpp").exists():
            continue
        for lib in (Path(prefix, "lib"), Path(prefix, "lib64"),
                    Path(prefix, "lib/x86_64-linux-gnu")):
            if any(lib.glob("libdnnl.so.3*")) and (lib / "libdnnl.so").exists():
                return inc, lib
    return None


def cache_dir() -> Path:
    return cache_home()


def build() -> Path | str:
    """The compiled library (built now if it is not in the cache), or why there is none."""
    found = find_onednn()
    if found is None:
        return ("oneDNN 3 not found (pip install onednn-cpu-gomp onednn-devel-cpu-gomp, "
                "or set ARCHSPEC_ONEDNN_PREFIX)")
    cxx = shutil.which(os.environ.get("CXX") or "g++") or shutil.which("c++")
    if cxx is None:
        return "no C++ compiler (g++) on PATH"
    import jax

    inc, lib = found
    ffi_inc = jax.ffi.include_dir()
    key = SOURCE.read_bytes() + f"{inc}|{lib}|{ffi_inc}|{cxx}|{jax.__version__}".encode()
    out = cache_dir() / f"onednn-{hashlib.sha256(key).hexdigest()[:16]}" / "libarchspec_onednn.so"
    if out.exists():
        return out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the build folder {out.parent}: {exc}"
    tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    cmd = [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-w", f"-I{inc}", f"-I{ffi_inc}",
           str(SOURCE), f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}", "-o", str(tmp)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"compiling {SOURCE.name} failed: {exc}"
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        tail = r.stderr.strip().splitlines()[-3:]
        return f"compiling {SOURCE.name} failed: " + " / ".join(tail)
    tmp.replace(out)  # atomic: concurrent first uses each build, the last rename wins
    return out


def load() -> ctypes.CDLL | str:
    """The loaded library with its XLA FFI targets registered (once per process), or why
    not. OpenMP is told to sleep rather than spin between oneDNN calls
    (OMP_WAIT_POLICY=PASSIVE unless set) so its threads do not take the cores from XLA's."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        so = build()
        if isinstance(so, str):
            _loaded = so
            return _loaded
        import jax

        saved = os.environ.get("OMP_WAIT_POLICY")
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when libgomp loads
        try:
            lib = ctypes.CDLL(str(so))
            for target, symbol in TARGETS:
                jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, symbol)),
                                            platform="cpu")
        except (OSError, AttributeError, ValueError) as exc:
            _loaded = f"loading {so} failed: {exc}"
            return _loaded
        finally:
            if saved is None:
                os.environ.pop("OMP_WAIT_POLICY", None)
        lib.archspec_onednn_impl.restype = ctypes.c_char_p
        lib.archspec_onednn_impl.argtypes = ([ctypes.c_int, ctypes.c_int]
                                             + [ctypes.POINTER(ctypes.c_int64)] * 7
                                             + [ctypes.c_int64])
        _loaded = lib
        return _loaded
