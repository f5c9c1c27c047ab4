"""Layout conversions against NumPy written from PyTorch's definitions (the torch fixtures
check the same through torch's own forward)."""
from __future__ import annotations

import numpy as np

from archspec.spec.resolve import load_architecture_text


def apply(spec: str, tensors: dict, x, tmp_path, map_text: str):
    import jax

    from archspec.model.build import build_model
    from archspec.weights import read
    from archspec.weights.load import load_into

    graph = load_architecture_text(spec)
    model = build_model(graph)
    variables = model.init(jax.random.key(0), x)
    (tmp_path / "map.yaml").write_text(map_text)
    path = read.write_tensors(tensors, tmp_path / "w.safetensors")
    loaded, report = load_into(graph, variables, path, map=str(tmp_path / "map.yaml"))
    assert not report.gaps
    (y,) = model.apply(loaded, x).values()
    return np.asarray(y)


def test_first_dense_after_flatten_reads_torch_c_h_w_order(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)          # N, H, W, C
    w = rng.normal(size=(6, 5 * 3 * 4)).astype(np.float32)        # torch Linear (out, C*H*W)
    b = rng.normal(size=(6,)).astype(np.float32)
    torch_flat = x.transpose(0, 3, 1, 2).reshape(2, -1)           # torch's flatten of NCHW
    spec = """
name: f
input: {shape: [3, 4, 5]}
layers:
  - flatten
  - dropout: 0.5
  - dense: {units: 6, activation: linear, name: fc}
"""
    y = apply(spec, {"fc.weight": w, "fc.bias": b}, x, tmp_path, "layers: {fc: fc}\n")
    np.testing.assert_allclose(y, torch_flat @ w.T + b, rtol=1e-5, atol=1e-5)


def test_attention_in_proj_splits_into_query_key_value(tmp_path):
    rng = np.random.default_rng(1)
    t, d, heads = 5, 8, 2
    x = rng.normal(size=(2, t, d)).astype(np.float32)
    tensors = {"mha.in_proj_weight": rng.normal(size=(3 * d, d)).astype(np.float32) / 3,
               "mha.in_proj_bias": rng.normal(size=(3 * d,)).astype(np.float32),
               "mha.out_proj.weight": rng.normal(size=(d, d)).astype(np.float32) / 3,
               "mha.out_proj.bias": rng.normal(size=(d,)).astype(np.float32)}
    # nn.MultiheadAttention: q, k, v = x W_in^T + b_in split in 3; per head softmax(qk^T/√h)v
    qkv = x @ tensors["mha.in_proj_weight"].T + tensors["mha.in_proj_bias"]
    q, k, v = (qkv[..., i * d:(i + 1) * d].reshape(2, t, heads, d // heads) for i in range(3))
    s = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(d // heads)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = np.einsum("bhqk,bkhd->bqhd", p, v).reshape(2, t, d)
    want = o @ tensors["mha.out_proj.weight"].T + tensors["mha.out_proj.bias"]
    spec = f"""
name: a
input: {{shape: [{t}, {d}]}}
layers:
  - attention: {{heads: {heads}, name: att}}
"""
    y = apply(spec, tensors, x, tmp_path, "layers: {att: mha}\n")
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
