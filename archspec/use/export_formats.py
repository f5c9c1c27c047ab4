"""The three export formats: each writes a file from a forward function and reads it back
for the check. StableHLO through jax.export, ONNX through jax2onnx (with XLA's convolutions
and ONNX-shaped pools: `exporting()`), safetensors through a name map in reverse."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from archspec.errors import ArchspecError

ONNX_OPSET = 21
ONNX_PACKAGES = "pip install 'archspec[export]' (onnx, onnxruntime, jax2onnx)"


class ExportError(ArchspecError):
    """A model that cannot be exported, or an export that does not compute what archspec
    does (exit 1: the file is not kept)."""

    exit_code = 1


@contextlib.contextmanager
def exporting():
    """Trace with XLA's own convolutions (the oneDNN custom call exports nowhere) and the
    pool lowerings ONNX has operators for."""
    from archspec.layers import onednn, pooling_ops

    old = (os.environ.get(onednn.ENV), pooling_ops.FAST_POOLS, pooling_ops.MERGED_WINDOWS)
    os.environ[onednn.ENV] = "xla"
    pooling_ops.FAST_POOLS, pooling_ops.MERGED_WINDOWS = False, True
    try:
        yield
    finally:
        if old[0] is None:
            os.environ.pop(onednn.ENV, None)
        else:
            os.environ[onednn.ENV] = old[0]
        pooling_ops.FAST_POOLS, pooling_ops.MERGED_WINDOWS = old[1], old[2]


def fresh(fn):
    """A new function object for `fn`: JAX keeps traces by function, and one traced before
    `exporting()` would bring back the oneDNN custom call."""
    return lambda *args: fn(*args)


def input_spec(shape, dtype, batch):
    """The exported program's input: a symbolic batch `b` or a fixed one."""
    import jax
    from jax import export

    lead = export.symbolic_shape("b") if batch == "dynamic" else (int(batch),)
    return jax.ShapeDtypeStruct((*lead, *shape), dtype)


# --- StableHLO ----------------------------------------------------------------------------

def write_stablehlo(fn, spec, path: Path) -> dict:
    import jax
    from jax import export

    exp = export.export(jax.jit(fresh(fn)))(spec)
    path.write_bytes(exp.serialize())
    return {"serialization": "jax.export", "calling_convention_version":
            exp.calling_convention_version, "platforms": list(exp.platforms)}


def run_stablehlo(path: Path):
    from jax import export

    exp = export.deserialize(bytearray(Path(path).read_bytes()))
    return lambda x: [np.asarray(y) for y in exp.call(x)]


# --- ONNX ---------------------------------------------------------------------------------

def _need_onnx():
    try:
        import jax2onnx  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ArchspecError(f"ONNX export needs {exc.name}, which is not installed",
                            hint=ONNX_PACKAGES) from None


def onnx_blockers(fn, spec, dynamic: bool) -> list[str]:
    """Every operation jax2onnx cannot convert, grouped by the archspec layers it sits in,
    all at once: "conv1, conv2: ffi_call: no ONNX conversion (a custom call)"."""
    import jax
    from jax2onnx.plugins.plugin_system import PLUGIN_REGISTRY, import_all_plugins

    import_all_plugins()
    example = jax.ShapeDtypeStruct((2, *spec.shape[1:]), spec.dtype)
    per_layer: dict[str, set] = {}
    jaxpr = jax.make_jaxpr(fresh(fn))(example).jaxpr
    for eqn, layer in _equations(jaxpr, "(model)"):
        name = eqn.primitive.name
        if name not in PLUGIN_REGISTRY:
            custom = name in ("ffi_call", "custom_call") or name.startswith("custom_") and \
                name not in ("custom_jvp_call", "custom_vjp_call")
            per_layer.setdefault(layer, set()).add(
                f"{name}: no ONNX conversion" + (" (a custom call)" if custom else ""))
        elif dynamic and name == "pad":
            per_layer.setdefault(layer, set()).add(
                "pad: jax2onnx cannot pad a tensor of symbolic batch (export with --batch N)")
    grouped: dict[str, list] = {}
    for layer, why in per_layer.items():
        grouped.setdefault("; ".join(sorted(why)), []).append(layer)
    return [f"{', '.join(layers)}: {why}" for why, layers in grouped.items()]


def _equations(jaxpr, layer):
    """(equation, archspec layer) of a jaxpr and every jaxpr inside it; an inner equation
    belongs to the layer of the equation that holds it."""
    from jax.extend import core

    for eqn in jaxpr.eqns:
        here = _layer(eqn) or layer
        yield eqn, here
        for v in eqn.params.values():
            for sub in v if isinstance(v, (list, tuple)) else (v,):
                if isinstance(sub, core.ClosedJaxpr):
                    yield from _equations(sub.jaxpr, here)
                elif isinstance(sub, core.Jaxpr):
                    yield from _equations(sub, here)


def _layer(eqn) -> str | None:
    parts = str(eqn.source_info.name_stack).split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "SpecModel" else None


def write_onnx(fn, spec, path: Path, names, outputs) -> dict:
    import jax2onnx
    import onnx
    import onnxruntime

    shape = ["b" if not isinstance(d, int) else d for d in spec.shape]
    proto = jax2onnx.to_onnx(fresh(fn), [tuple(shape)], model_name=path.stem,
                             opset=ONNX_OPSET, input_names=list(names),
                             output_names=list(outputs))
    # jax2onnx's layout pass can leave intermediate shapes that no longer hold: ONNX
    # Runtime infers them again
    del proto.graph.value_info[:]
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    custom = sorted({n.op_type for n in proto.graph.node if n.domain not in ("", "ai.onnx")})
    if custom:
        raise ExportError(f"the ONNX graph holds custom operators: {', '.join(custom)}")
    return {"opset": ONNX_OPSET, "ir_version": int(proto.ir_version),
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "jax2onnx": _version("jax2onnx")}


def run_onnx(path: Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: np.asarray(x)})


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
