"""`archspec pool IMAGE --op all --size 4`: downsampling by pooling, shown on a picture.

Each K×K window (stride K) keeps one value per channel: the max (the strongest signal),
the min or the average. The pooling is `window_pool`, the very function the `pool` layer
runs, so the picture shows exactly what the layer does."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from archspec.viz import PictureInputError
from archspec.viz.images import image_array, is_array_file, read_npy, to_unit_range

OPS = ("max", "min", "avg")
NAMES = {"max": "max pooling", "min": "min pooling", "avg": "average pooling"}


def load(path: Path) -> np.ndarray:
    """(H, W, C) in [0, 1]: an image, or a 2-D/3-D array scaled to its own min..max."""
    if is_array_file(path):
        a = read_npy(path)
        if a.ndim == 2:
            a = a[..., None]
        if a.ndim != 3 or 0 in a.shape:  # (0, 3): no pixel to pool
            raise PictureInputError(f"{path} has shape {a.shape}; pooling needs (H, W) or (H, W, C)",
                           "every axis needs at least one element")
        return to_unit_range(a)
    return image_array(path)


def pool(image: np.ndarray, op: str, size: int, stride: int | None = None) -> np.ndarray:
    import jax.numpy as jnp

    from archspec.layers.pooling_ops import window_pool

    stride = size if stride is None else stride  # --stride 0 is an error, not the default
    h, w = image.shape[:2]
    if size < 1 or stride < 1:
        raise PictureInputError("--size and --stride must be positive")
    if size > min(h, w):
        raise PictureInputError(f"a {size}×{size} window is larger than the {h}×{w} image",
                       f"use --size {max(min(h, w) // 2, 1)} or less")
    out = ((h - size) // stride + 1, (w - size) // stride + 1)
    y = window_pool(jnp.asarray(image[None], jnp.float32), op, (size, size), (stride, stride),
                    [(0, 0), (0, 0)], out)
    return np.asarray(y[0])


def pool_all(image: np.ndarray, ops, size: int, stride: int | None = None):
    return [(op, pool(image, op, size, stride)) for op in ops]


def plot_pooling(image: np.ndarray, results, size: int, stride: int | None,
                 output: Path, name: str = "") -> Path:
    from archspec.viz import pyplot, save_figure

    plt = pyplot()
    n = 1 + len(results)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.8), dpi=100, squeeze=False)
    h, w = image.shape[:2]
    window = f"{size}×{size}" + (f", stride {stride}" if stride and stride != size else "")
    panels = [(f"original\n{h}×{w}", image)] + [
        (f"{NAMES[op]} {window}\n{a.shape[0]}×{a.shape[1]}", a) for op, a in results]
    for ax, (title, a) in zip(axes[0], panels):
        shown = a[..., 0] if a.shape[-1] == 1 else np.clip(a, 0.0, 1.0)
        # every panel covers the same area, so the coarser grids show as bigger pixels
        ax.imshow(shown, cmap="gray" if a.shape[-1] == 1 else None, vmin=0.0, vmax=1.0,
                  interpolation="nearest", extent=(0, w, h, 0))
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if name:
        fig.suptitle(name, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, output)
