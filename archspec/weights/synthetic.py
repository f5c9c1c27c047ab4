"""A seeded state dict made with NumPy alone: the same tensors from the same key -> shape
manifest and seed on any machine, with or without torch. The reference fixtures
(tools/make_weight_fixtures.py) give these tensors to PyTorch's own model; the tests make
them again to load into archspec, so PyTorch's logits check archspec's port of them.

The values are scaled like a trained network's (fan-in scaled weights, BN statistics away
from 0 and 1), so every layer matters to the logits and nothing overflows."""
from __future__ import annotations

import math
import zlib

import numpy as np


def tensor(key: str, shape, seed: int) -> np.ndarray:
    """One tensor: its own generator, seeded by the seed and the key's CRC-32."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    shape = tuple(shape)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.zeros(shape, np.int64)
    if leaf == "running_var":
        x = rng.uniform(0.5, 2.0, shape)
    elif leaf in ("running_mean", "bias") or leaf.endswith("_bias"):
        x = rng.normal(0.0, 0.1, shape)
    elif leaf == "weight" and len(shape) == 1:  # a norm's γ
        x = rng.uniform(0.5, 1.5, shape)
    elif leaf.endswith("weight"):  # conv, linear, in_proj: fan-in scaled
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        x = rng.normal(0.0, 1.0 / math.sqrt(fan_in), shape)
    elif "scale" in leaf:  # ConvNeXt's layer scale
        x = rng.uniform(0.1, 1.0, shape)
    else:  # class token, position table
        x = rng.normal(0.0, 0.5, shape)
    return x.astype(np.float32)


def state_dict(manifest: dict, seed: int) -> dict[str, np.ndarray]:
    """{key: tensor} for a {key: shape} manifest."""
    return {k: tensor(k, s, seed) for k, s in manifest.items()}


def inputs(shape, seed: int) -> np.ndarray:
    """The reference input batch, channels first as PyTorch takes it (N, C, H, W)."""
    return np.random.default_rng(seed).normal(0.0, 1.0, tuple(shape)).astype(np.float32)
