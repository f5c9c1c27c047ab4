"""Evaluation with `eval_flip`: the eval step's outputs and metrics against averaging by hand
the logits of each image and of its mirror."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

NET = """\
name: t
input: {shape: [6, 5, 2]}
layers:
  - conv: {maps: 3, kernel: 3, activation: relu}
  - flatten
  - dense: {units: 4, activation: linear, name: logits}
heads:
  out: {from: logits, output: softmax}
"""


def test_flip_averages_the_logits_of_each_image_and_its_mirror():
    from archspec.engine.step import HeadLoss, init_state, make_eval_step, make_mesh
    from archspec.model.build import build_model
    from archspec.spec.resolve import load_architecture_text
    import optax

    g = load_architecture_text(NET)
    model = build_model(g)
    heads = [HeadLoss("out", "categorical_crossentropy", "softmax", 1.0)]
    state = init_state(model, g, optax.sgd(0.1), 0, jnp.zeros((1, 6, 5, 2)))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 5, 2)).astype(np.float32)
    y = rng.integers(0, 4, 8).astype(np.int32)
    w = np.ones(8, np.float32)
    metrics, out = jax.device_get(make_eval_step(model, heads, make_mesh(), flip=True)(
        state, x, y, w))

    variables = {"params": state.params}
    plain = np.asarray(model.apply(variables, x, train=False)["out"], np.float64)
    mirror = np.asarray(model.apply(variables, x[:, :, ::-1, :].copy(), train=False)["out"],
                        np.float64)
    assert not np.allclose(plain, mirror)  # the network is not mirror-symmetric
    mean = (plain + mirror) / 2
    np.testing.assert_allclose(out["out"], mean, rtol=1e-5, atol=1e-6)
    logp = mean - mean.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    np.testing.assert_allclose(metrics["loss"], -logp[np.arange(8), y].mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["accuracy/out"], (mean.argmax(1) == y).mean())
    no_flip, _ = jax.device_get(make_eval_step(model, heads, make_mesh())(state, x, y, w))
    logp = plain - plain.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    np.testing.assert_allclose(no_flip["loss"], -logp[np.arange(8), y].mean(), rtol=1e-5)
