"""Augmentation declared in the experiment (`augment:`), applied to the train split only.

The ops run on the device, inside the jitted train step, as pure functions of a key
derived from the run's seed and the step number: nothing is carried between steps, so a
resumed run draws exactly what an uninterrupted one draws, and sharding over a mesh
changes nothing. (benchmarks/augment_placement.py measures this against NumPy on the host.)

Image ops work in pixel space: the batch is denormalised with the train split's own
statistics, transformed, and normalised again, so `brightness: 0.2` means what it means
in torchvision whatever `data.normalize` is. Padding (random_crop) is black; cutout fills
with the mean pixel (0 after standard normalisation), as in DeVries & Taylor (2017).
Values are not clipped: the pixel range of a source is not known here.

Each op is one entry of OPS: its options (a pydantic model, validated with located
errors like every key) and its function. Per-example ops take (options, key, image) for
one (H, W, C) image; batch ops (mixup, cutmix) take (options, key, x, y) with y as class
probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp
from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from archspec.data import PIXELS, normalization_terms

GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale


class OpOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class RandomCrop(OpOptions):
    padding: int = Field(4, ge=0, description="black border added on every side before a "
                                              "crop of the input's size is taken")


class Flip(OpOptions):
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = Field(
        "horizontal", description="which axes may be mirrored (each with probability 1/2)")


class RandomResizedCrop(OpOptions):
    scale: list[float] = Field([0.08, 1.0], min_length=2, max_length=2,
                               description="fraction of the image's area the crop covers: "
                                           "[min, max]")
    ratio: list[float] = Field([3 / 4, 4 / 3], min_length=2, max_length=2,
                               description="width/height of the crop: [min, max], drawn "
                                           "log-uniform")

    @model_validator(mode="after")
    def _ordered(self):
        for name in ("scale", "ratio"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be [min, max] with 0 < min <= max")
        if self.scale[1] > 1:
            raise ValueError("scale is a fraction of the image's area: at most 1")
        return self


class ColorJitter(OpOptions):
    brightness: float = Field(0.0, ge=0, description="multiply pixels by a factor in "
                                                     "[1-b, 1+b]")
    contrast: float = Field(0.0, ge=0, description="scale the distance to the image's mean "
                                                   "gray by a factor in [1-c, 1+c]")
    saturation: float = Field(0.0, ge=0, description="scale the distance to each pixel's gray "
                                                     "by a factor in [1-s, 1+s] (3 channels)")


# Cutout (DeVries & Taylor, 2017) erases one square; random-erasing variants a few. 32
# squares of side 4 already erase about 40% of a 32x32 image. The squares are drawn in a
# loop (the program does not grow with the count), but each costs a pass over the image.
MAX_CUTOUTS = 32


class Cutout(OpOptions):
    size: int = Field(description="side of the square filled with the mean pixel", ge=1)
    count: int = Field(1, ge=1, le=MAX_CUTOUTS, description="squares per image")


class Mix(OpOptions):
    alpha: float = Field(description="the mixing weight is drawn from Beta(alpha, alpha)", gt=0)


@dataclass(frozen=True)
class Op:
    options: type[OpOptions]
    fn: Callable
    batch: bool = False       # works on the whole batch and its labels (mixup, cutmix)
    image: bool = True        # needs (H, W, C) inputs
    channels: int | None = None  # needs this many channels (saturation: 3)
    moves_pixels: bool = True    # moves pixels or mixes examples: a mask would have to follow


def random_crop(o: RandomCrop, key, img):
    p = o.padding
    h, w, _ = img.shape
    padded = jnp.pad(img, ((p, p), (p, p), (0, 0)))
    ky, kx = jax.random.split(key)
    dy = jax.random.randint(ky, (), 0, 2 * p + 1)
    dx = jax.random.randint(kx, (), 0, 2 * p + 1)
    return jax.lax.dynamic_slice(padded, (dy, dx, 0), img.shape)


def flip(o: Flip, key, img):
    kh, kv = jax.random.split(key)
    if o.mode != "vertical":
        img = _maybe_reverse(kh, img, 1)
    if o.mode != "horizontal":
        img = _maybe_reverse(kv, img, 0)
    return img


def _maybe_reverse(key, img, axis: int):
    """img reversed along `axis` with probability 1/2, as a gather of reordered indices. As a
    select between img and img[::-1], a resized crop followed by it took 9× the crop alone
    on XLA:CPU (benchmarks/README.md, the streaming pipeline)."""
    n = img.shape[axis]
    idx = jnp.where(jax.random.bernoulli(key), jnp.arange(n - 1, -1, -1), jnp.arange(n))
    return jnp.take(img, idx, axis, mode="clip")  # in bounds: no fill mask to compute


def crop_box(o: RandomResizedCrop, key, h: int, w: int):
    """(top, left, height, width) in whole pixels, as torchvision draws them (clipped to the
    image instead of retried)."""
    ka, kr, ky, kx = jax.random.split(key, 4)
    area = h * w * jax.random.uniform(ka, (), minval=o.scale[0], maxval=o.scale[1])
    log_r = jax.random.uniform(kr, (), minval=jnp.log(o.ratio[0]), maxval=jnp.log(o.ratio[1]))
    r = jnp.exp(log_r)
    cw = jnp.clip(jnp.round(jnp.sqrt(area * r)), 1, w).astype(jnp.int32)
    ch = jnp.clip(jnp.round(jnp.sqrt(area / r)), 1, h).astype(jnp.int32)
    top = jax.random.randint(ky, (), 0, h - ch + 1)
    left = jax.random.randint(kx, (), 0, w - cw + 1)
    return top, left, ch, cw


def random_resized_crop(o: RandomResizedCrop, key, img):
    h, w, _ = img.shape
    top, left, ch, cw = crop_box(o, key, h, w)
    # Columns first, while raw pixels are still bytes: on XLA:CPU the strided column
    # gather costs 2.5x the row gather, and 20% less on uint8 than on float32.
    img = _resample(img, 1, left, cw, w)
    return _resample(img, 0, top, ch, h)


def _resample(img, axis: int, start, length, out: int):
    """Bilinear resize of img[start:start+length] (along `axis`) to `out` pixels, with
    half-pixel centres and the crop's own edge repeated (as resizing the cropped window
    would: no pixel outside the crop leaks in). Crops are never larger than the output,
    so there is no downsampling to anti-alias."""
    src = start + (jnp.arange(out) + 0.5) * length / out - 0.5
    src = jnp.clip(src, start, start + length - 1)
    i0 = jnp.floor(src).astype(jnp.int32)
    i1 = jnp.minimum(i0 + 1, start + length - 1)
    f = (src - i0).reshape((-1,) + (1,) * (img.ndim - 1 - axis))
    # The indices are in bounds: mode="clip" spares the out-of-bounds mask of the default
    # mode, which made this resize 1.8x slower on XLA:CPU.
    a, b = jnp.take(img, i0, axis, mode="clip"), jnp.take(img, i1, axis, mode="clip")
    return a * (1 - f) + b * f


def _gray(img):
    return img @ jnp.asarray(GRAY, img.dtype) if img.shape[-1] == 3 else img[..., 0]


def color_jitter(o: ColorJitter, key, img):
    kb, kc, ks = jax.random.split(key, 3)

    def factor(k, amount):
        return jax.random.uniform(k, (), minval=max(0.0, 1 - amount), maxval=1 + amount)

    if o.brightness:
        img = img * factor(kb, o.brightness)
    if o.contrast:
        mean = _gray(img).mean()
        img = (img - mean) * factor(kc, o.contrast) + mean
    if o.saturation:
        gray = _gray(img)[..., None]
        img = (img - gray) * factor(ks, o.saturation) + gray
    return img


def cutout(o: Cutout, key, img, fill):
    h, w, _ = img.shape
    ys, xs = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    keys = jax.random.split(key, o.count)

    def square(i, img):
        ky, kx = jax.random.split(keys[i])
        cy, cx = jax.random.randint(ky, (), 0, h), jax.random.randint(kx, (), 0, w)
        # DeVries & Taylor: a size x size square centred on (cy, cx), clipped at the border.
        inside = ((ys >= cy - o.size // 2) & (ys < cy - o.size // 2 + o.size)
                  & (xs >= cx - o.size // 2) & (xs < cx - o.size // 2 + o.size))
        return jnp.where(inside[..., None], fill, img)

    # a loop, not `count` unrolled copies: compiling takes the same time for any count
    return jax.lax.fori_loop(0, o.count, square, img)


def _partner(key, n):
    """Which example each one is mixed with: a random permutation of the batch."""
    return jax.random.permutation(key, n)


def mixup(o: Mix, key, x, y):
    kl, kp = jax.random.split(key)
    lam = jax.random.beta(kl, o.alpha, o.alpha)
    perm = _partner(kp, x.shape[0])
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]


def cutmix(o: Mix, key, x, y):
    kl, kp, ky, kx = jax.random.split(key, 4)
    _, h, w, _ = x.shape
    lam = jax.random.beta(kl, o.alpha, o.alpha)
    cut = jnp.sqrt(1 - lam)
    ch, cw = jnp.floor(h * cut).astype(jnp.int32), jnp.floor(w * cut).astype(jnp.int32)
    cy, cx = jax.random.randint(ky, (), 0, h), jax.random.randint(kx, (), 0, w)
    y0, y1 = jnp.clip(cy - ch // 2, 0, h), jnp.clip(cy + ch // 2, 0, h)
    x0, x1 = jnp.clip(cx - cw // 2, 0, w), jnp.clip(cx + cw // 2, 0, w)
    rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
    box = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
    perm = _partner(kp, x.shape[0])
    mixed = jnp.where(box[None, :, :, None], x[perm], x)
    kept = 1 - box.sum() / (h * w)  # the label weight is the area actually kept
    return mixed, kept * y + (1 - kept) * y[perm]


OPS: dict[str, Op] = {
    "random_crop": Op(RandomCrop, random_crop),
    "flip": Op(Flip, flip),
    "random_resized_crop": Op(RandomResizedCrop, random_resized_crop),
    "color_jitter": Op(ColorJitter, color_jitter, moves_pixels=False),
    "cutout": Op(Cutout, cutout, moves_pixels=False),
    "mixup": Op(Mix, mixup, batch=True, image=False),
    "cutmix": Op(Mix, cutmix, batch=True),
}


def pixel_transform(norm_stats: dict, channels: int):
    """(to_pixels, from_pixels, mean_pixel in model space) for the data's normalisation."""
    terms = normalization_terms(norm_stats)
    if terms is None:
        return (lambda x: x), (lambda x: x), jnp.zeros((channels,), jnp.float32)
    shift, scale = (jnp.asarray(t) for t in terms)
    return (lambda x: x * scale + shift), (lambda x: (x - shift) / scale), shift


def make_augment(steps: list[tuple[str, Any]], norm_stats: dict, num_classes: int | None):
    """A function (key, x, y) -> (x, y) applying `steps` in order to one batch of
    normalised inputs or of raw 8-bit pixels (data.to_network), returning it normalised.
    With a batch op, integer labels become class probabilities (the loss takes either)."""
    if not steps:
        return None

    def apply(key, x, y):
        to_px, from_px, mean_px = pixel_transform(norm_stats, x.shape[-1])
        # raw pixels are moved as they are: gathers of bytes, not of floats
        x = x if x.dtype == PIXELS else to_px(x.astype(jnp.float32))
        if any(OPS[name].batch for name, _ in steps) and y.ndim == 1:
            y = jax.nn.one_hot(y, num_classes, dtype=jnp.float32)
        for i, (name, opts) in enumerate(steps):
            op, k = OPS[name], jax.random.fold_in(key, i)
            if op.batch:
                x, y = op.fn(opts, k, x, y)
                continue
            fn = (lambda kk, img, o=opts: cutout(o, kk, img, mean_px)) if name == "cutout" \
                else (lambda kk, img, o=opts, f=op.fn: f(o, kk, img))
            x = jax.vmap(fn)(jax.random.split(k, x.shape[0]), x)
        return from_px(x.astype(jnp.float32)), y

    return apply


def _as_mapping(value):
    """`- flip`, `- flip:` and `- flip: {mode: vertical}` all name one op."""
    if isinstance(value, str):
        return {value: {}}
    if isinstance(value, dict) and len(value) == 1:
        (name, opts), = value.items()
        return {name: {} if opts is None else opts}
    return value


class AugmentStep(OpOptions):
    """One entry of `augment:`: exactly one op with its options."""

    random_crop: RandomCrop | None = None
    flip: Flip | None = None
    random_resized_crop: RandomResizedCrop | None = None
    color_jitter: ColorJitter | None = None
    cutout: Cutout | None = None
    mixup: Mix | None = None
    cutmix: Mix | None = None

    _one = model_validator(mode="before")(lambda value: _as_mapping(value))

    @model_validator(mode="after")
    def _exactly_one(self):
        if len(self.model_fields_set) != 1:
            raise ValueError("each augment entry names one op, e.g. `- flip` or "
                             "`- random_crop: {padding: 4}`")
        return self

    @property
    def op(self) -> tuple[str, OpOptions]:
        (name,) = self.model_fields_set
        return name, getattr(self, name)

    @model_serializer(mode="wrap")
    def _as_written(self, handler):
        """Saved as it is written, `{flip: {mode: horizontal}}`: the other ops' empty fields
        would not load again (a run's config.yaml is re-read by eval and resume)."""
        name, _ = self.op
        return {name: handler(self)[name]}


assert set(AugmentStep.model_fields) == set(OPS), "every op has its entry"


def check_steps(steps: list[AugmentStep], input_shape: tuple, task: str,
                label_shape: tuple = ()) -> list[tuple[int, str, str]]:
    """Why each op cannot apply to this data: (entry index, op, reason). Empty: all fit.
    `label_shape`: one example's label (a mask has spatial axes)."""
    problems = []
    for i, step in enumerate(steps):
        name, opts = step.op
        op = OPS[name]
        if len(label_shape) >= 2 and op.moves_pixels:  # the mask would not follow its image
            problems.append((i, name, f"the labels are masks {tuple(label_shape)}, one per "
                                      f"pixel, and moving them with their images is not "
                                      f"supported yet"))
            continue
        if op.image and len(input_shape) != 3:
            problems.append((i, name, f"needs image inputs (height, width, channels); this "
                                      f"input is {tuple(input_shape)}"))
        elif name == "color_jitter" and opts.saturation and input_shape[-1] != 3:
            problems.append((i, name, f"saturation needs 3 colour channels; this input has "
                                      f"{input_shape[-1]}"))
        if op.batch and task != "classification":
            problems.append((i, name, "mixes class labels: it needs a classification task"))
    return problems
