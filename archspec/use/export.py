"""`archspec export`: a trained run as a StableHLO program, an ONNX model or a safetensors
file, each read back from disk and checked against archspec's own forward at two batch
sizes before it is kept, with a sidecar JSON (versions, input, preprocessing, the check).

The exported program takes the normalised input (channels last, as archspec's model does)
and returns the raw outputs of the inference heads (logits, before softmax); the sidecar
says how to normalise and what each output is."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

from archspec.engine.reporter import Warn, ignore
from archspec.use import export_formats as fmts
from archspec.use.export_formats import ExportError

FORMATS = ("stablehlo", "onnx", "safetensors")
RTOL, ATOL = 1e-4, 1e-5
SEED = 0


def export(run_dir: Path, fmt: str, output: Path, which: str = "best", batch="dynamic",
           namemap: str = "archspec", warn: Warn = ignore) -> dict:
    """Write the export and its sidecar; returns the sidecar. A failed check removes the
    written file and raises ExportError (exit 1)."""
    from archspec.use.evaluate import load_state

    output = Path(output)
    setup, state, which = load_state(Path(run_dir), which, warn)
    graph = setup.graph
    if len(graph.inputs) != 1:
        raise ExportError(f"export takes one input; this network has {len(graph.inputs)} "
                          f"({', '.join(graph.inputs)}): not supported yet", exit_code=2)
    (inp,) = graph.inputs.values()
    heads = [n for n, h in graph.heads.items() if not h.train_only]
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    fn = _forward(setup.model, variables, heads)
    batches = (1, 3) if batch == "dynamic" else (int(batch),)
    examples = [_example(b, inp) for b in batches]
    reference = [[np.asarray(y) for y in fn(x)] for x in examples]  # archspec as it runs
    info = _write(fmt, fn, graph, inp, heads, variables, output, batch, namemap)
    check = _verify(fmt, output, examples, reference, graph, variables, heads, namemap)
    sidecar = _sidecar(run_dir, which, state, setup, inp, heads, fmt, batch, info, check)
    Path(str(output) + ".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def _forward(model, variables, heads):
    def fn(x):
        out = model.apply(variables, x, train=False)
        return tuple(out[h] for h in heads)
    return fn


def _example(batch: int, inp) -> np.ndarray:
    rng = np.random.default_rng([SEED, batch])
    if inp.dtype == "int32":
        return rng.integers(0, 2, (batch, *inp.shape)).astype(np.int32)
    return rng.normal(0.0, 1.0, (batch, *inp.shape)).astype(np.float32)


def _write(fmt, fn, graph, inp, heads, variables, output, batch, namemap) -> dict:
    if fmt == "safetensors":
        from archspec.weights.load import export_tensors
        from archspec.weights.read import write_tensors

        tensors = export_tensors(graph, variables, namemap)
        write_tensors(tensors, output, metadata={"archspec_spec": graph.name, "map": namemap})
        return {"map": namemap, "tensors": len(tensors)}
    import jax.numpy as jnp

    spec = fmts.input_spec(inp.shape, jnp.int32 if inp.dtype == "int32" else jnp.float32,
                           batch)
    with fmts.exporting():
        if fmt == "stablehlo":
            return fmts.write_stablehlo(fn, spec, output)
        fmts._need_onnx()
        blockers = fmts.onnx_blockers(fn, spec, batch == "dynamic")
        if blockers:
            raise ExportError("these layers do not export to ONNX:\n" + "\n".join(
                f"  {b}" for b in blockers), "nothing was written", exit_code=2)
        return fmts.write_onnx(fn, spec, output, [inp.id], heads)


def _verify(fmt, output, examples, reference, graph, variables, heads, namemap) -> dict:
    """Run the file read back from disk; every output within rtol 1e-4, atol 1e-5."""
    if fmt == "safetensors":
        run = _reloaded_weights(output, graph, variables, heads, namemap)
    else:
        run = (fmts.run_stablehlo if fmt == "stablehlo" else fmts.run_onnx)(output)
    rows, ok = [], True
    for x, ref in zip(examples, reference):
        got = [np.asarray(y) for y in run(x)]
        diff = max(float(np.abs(g - r).max()) for g, r in zip(got, ref))
        scale = max(float(np.abs(r).max()) for r in ref) or 1.0
        good = all(g.shape == r.shape and np.allclose(g, r, rtol=RTOL, atol=ATOL)
                   for g, r in zip(got, ref))
        ok &= good
        rows.append({"batch": len(x), "max_abs_diff": diff, "max_rel_diff": diff / scale,
                     "ok": good})
    check = {"rtol": RTOL, "atol": ATOL, "batches": rows, "ok": ok}
    if not ok:
        output.unlink(missing_ok=True)
        worst = max(rows, key=lambda r: r["max_abs_diff"])
        raise ExportError(f"{output}: the exported model does not compute what archspec does "
                          f"(batch {worst['batch']}: largest difference "
                          f"{worst['max_abs_diff']:.3g}); the file was removed")
    return check


def _reloaded_weights(output, graph, variables, heads, namemap):
    from archspec.model.build import build_model
    from archspec.weights.load import load_into

    loaded, _ = load_into(graph, variables, output, map=namemap)
    return _forward(build_model(graph), loaded, heads)


def _sidecar(run_dir, which, state, setup, inp, heads, fmt, batch, info, check) -> dict:
    import flax
    import jax
    import jaxlib

    from archspec import __version__

    ds = setup.dataset
    return {
        "format": fmt, "run": str(run_dir), "checkpoint": which, "step": int(state.step),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"archspec": __version__, "jax": jax.__version__,
                     "jaxlib": jaxlib.__version__, "flax": flax.__version__},
        fmt: info,
        "input": {"name": inp.id, "shape": ["batch" if batch == "dynamic" else int(batch),
                                            *inp.shape],
                  "dtype": inp.dtype, "layout": "channels last"},
        "outputs": {h: {"shape": ["batch", *setup.graph.heads[h].shape],
                        "values": f"raw (apply {setup.graph.heads[h].output} for the "
                                  "prediction)"} for h in heads},
        "preprocessing": {"normalization": _jsonable(ds.norm_stats),
                          "class_names": list(ds.class_names or [])},
        "check": check,
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return np.asarray(value).tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
