"""What `archspec data show` reports: the splits' sizes and class balance, and a grid of
training examples exactly as the model receives them (fitted to the input shape,
augmented with the experiment's own `augment:` ops and seed), shown in pixel units with
their class names."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from archspec.viz import PictureInputError, pyplot, save_figure


@dataclass(frozen=True)
class SplitBalance:
    split: str
    examples: int
    counts: dict[str, int]  # class name -> examples (classification only)


def balance(dataset) -> list[SplitBalance]:
    names = dataset.class_names or [str(k) for k in range(dataset.num_classes or 0)]
    out = []
    for split in ("train", "val", "test"):
        s = getattr(dataset, split)
        counts = {}
        if dataset.task == "classification" and s.y.ndim == 1:
            ids, n = np.unique(s.y, return_counts=True)
            counts = {names[int(i)] if int(i) < len(names) else str(i): int(c)
                      for i, c in zip(ids, n)}
        out.append(SplitBalance(split, len(s.y), counts))
    return out


def first_batch(setup, count: int):
    """The first `count` examples of the first train step exactly as it receives them (same
    shuffle, same augmentation key), in pixel units, with their labels (class ids, or class
    probabilities after mixing)."""
    import jax
    import jax.numpy as jnp

    from archspec.data import batches
    from archspec.engine.augment import pixel_transform
    from archspec.engine.step import augment_key, pad_batch, train_inputs

    exp, ds = setup.exp, setup.dataset
    x, y = next(batches(ds.train, exp.batch_size, shuffle=True, seed=exp.seed, epoch=0))
    x, y, _ = pad_batch(np.asarray(x), np.asarray(y), exp.batch_size)
    x, y = jax.jit(partial(train_inputs, setup.augment, ds.norm_stats))(
        augment_key(exp.seed, 0), jnp.asarray(x), jnp.asarray(y))
    to_pixels, _, _ = pixel_transform(ds.norm_stats, x.shape[-1])
    return np.asarray(to_pixels(jnp.asarray(x[:count], jnp.float32))), np.asarray(y[:count])


def draw(dataset, pixels: np.ndarray, labels: np.ndarray, path, columns: int = 8):
    if pixels.ndim != 4 or pixels.shape[-1] not in (1, 3, 4):
        raise PictureInputError(f"examples of shape {pixels.shape[1:]} are not images",
                       "data show draws image inputs (height, width, 1, 3 or 4 channels); "
                       "the sizes and class balance above describe this data")
    plt = pyplot()
    rows = -(-len(pixels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    lo, hi = float(pixels.min()), float(pixels.max())
    scale = 255.0 if hi > 1.5 else 1.0  # 8-bit sources: 0..255; others already 0..1
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, label in zip(axes.flat, pixels, labels):
        shown = np.clip(img / scale, 0, 1)
        ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown,
                  cmap="gray" if shown.shape[-1] == 1 else None, vmin=0, vmax=1)
        ax.set_title(_label(dataset, label), fontsize=7)
    fig.suptitle(f"{dataset.name}: training examples as the model sees them "
                 f"(pixel range {lo:.3g}..{hi:.3g})", fontsize=9)
    return save_figure(fig, path)


def _label(dataset, label) -> str:
    names = dataset.class_names or [str(k) for k in range(dataset.num_classes or 0)]
    label = np.asarray(label)
    if label.ndim == 0:
        k = int(label)
        return names[k] if dataset.task == "classification" and k < len(names) else f"{label:.3g}"
    if dataset.task != "classification":
        return ", ".join(f"{v:.3g}" for v in label.ravel()[:3])
    top = np.argsort(label)[::-1][:2]  # mixed labels: the two largest shares
    return " + ".join(f"{names[k]} {label[k]:.0%}" for k in top if label[k] > 0)
