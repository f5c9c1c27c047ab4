"""The ONNX path on zoo networks, built from their specs (random weights): ResNet-18 (its
padded 3×3/2 max pool, projections) and the per-pixel U-Net (transposed convolutions,
concatenated skips), run by ONNX Runtime at two batch sizes; and the pre-flight that names
every layer that cannot be exported."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from helpers import ROOT

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "jax2onnx")),
    reason="ONNX export needs the export extra: pip install 'archspec[export]'")


def model_fn(spec, shape):
    import jax
    import jax.numpy as jnp

    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture

    graph = load_architecture(ROOT / "architectures" / spec, shape)
    model = build_model(graph)
    variables = model.init(jax.random.key(0), jnp.zeros((1, *shape)))
    heads = list(graph.heads)
    return graph, (lambda x: tuple(model.apply(variables, x)[h] for h in heads)), heads


@pytest.mark.slow
@pytest.mark.parametrize("spec,shape", [("resnet18.yaml", (64, 64, 3)),
                                        ("unet.yaml", (32, 32, 1))])
def test_onnx_equals_archspec(spec, shape, tmp_path):
    import jax.numpy as jnp

    from archspec.use import export_formats as fmts

    graph, fn, heads = model_fn(spec, shape)
    want = {b: np.asarray(fn(np.random.default_rng(b).normal(size=(b, *shape))
                             .astype(np.float32))[0]) for b in (1, 3)}
    with fmts.exporting():
        sdt = fmts.input_spec(shape, jnp.float32, "dynamic")
        assert fmts.onnx_blockers(fn, sdt, True) == []
        fmts.write_onnx(fn, sdt, tmp_path / "m.onnx", ["input"], heads)
    run = fmts.run_onnx(tmp_path / "m.onnx")
    for b, ref in want.items():
        (got,) = run(np.random.default_rng(b).normal(size=(b, *shape)).astype(np.float32))
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


def test_preflight_names_every_custom_call_layer():
    """With oneDNN's convolutions (a custom call) every conv layer is a blocker, named;
    under exporting() XLA's convolutions leave none."""
    import jax.numpy as jnp

    from archspec.layers import onednn
    from archspec.use import export_formats as fmts

    if onednn.decide()[0] != "onednn":
        pytest.skip("oneDNN convolutions are not built here")
    shape = (8, 8, 1)
    _, fn, _ = model_fn("lenet_digits.yaml", shape)
    sdt = fmts.input_spec(shape, jnp.float32, "dynamic")
    blockers = fmts.onnx_blockers(fn, sdt, True)
    convs = [b for b in blockers if b.startswith("conv1, conv2: ")]
    assert len(convs) == 1 and "ffi_call: no ONNX conversion (a custom call)" in convs[0]
    # the pools' fast lowering pads, which jax2onnx cannot do at a symbolic batch
    assert any(b.startswith("pool1, pool2: pad: ") for b in blockers)
    with fmts.exporting():
        assert fmts.onnx_blockers(fn, sdt, True) == []
