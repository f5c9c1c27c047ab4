"""Each augmentation op against results computed by hand or with plain NumPy."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pydantic import ValidationError

from archspec.engine import augment as A

KEYS = [jax.random.key(i) for i in range(40)]


def image(h=6, w=5, c=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (h, w, c)).astype(np.float32)


def test_random_crop_is_a_window_of_the_black_padded_image():
    img, p = image(), 2
    padded = np.pad(img, ((p, p), (p, p), (0, 0)))
    seen = set()
    for k in KEYS:
        out = np.asarray(A.random_crop(A.RandomCrop(padding=p), k, jnp.asarray(img)))
        hits = [(dy, dx) for dy, dx in itertools.product(range(2 * p + 1), repeat=2)
                if np.array_equal(out, padded[dy:dy + 6, dx:dx + 5])]
        assert hits, "the output is not a window of the padded image"
        seen.update(hits)
    assert len(seen) > 10  # offsets are drawn over the whole 5x5 range, not fixed


@pytest.mark.parametrize("mode,allowed", [
    ("horizontal", {"same", "h"}), ("vertical", {"same", "v"}),
    ("horizontal_and_vertical", {"same", "h", "v", "hv"})])
def test_flip_mirrors_only_the_named_axes(mode, allowed):
    img = image()
    forms = {"same": img, "h": img[:, ::-1], "v": img[::-1], "hv": img[::-1, ::-1]}
    seen = set()
    for k in KEYS:
        out = np.asarray(A.flip(A.Flip(mode=mode), k, jnp.asarray(img)))
        seen |= {name for name, f in forms.items() if np.array_equal(out, f)}
    assert seen == allowed


def bilinear_crop(img, top, left, ch, cw, h, w):
    """Resize img[top:top+ch, left:left+cw] to (h, w): half-pixel centres, edge repeated."""
    crop = img[top:top + ch, left:left + cw]
    out = np.zeros((h, w, img.shape[2]), np.float64)
    for i in range(h):
        for j in range(w):
            y = min(max((i + 0.5) * ch / h - 0.5, 0), ch - 1)
            x = min(max((j + 0.5) * cw / w - 0.5, 0), cw - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, ch - 1), min(x0 + 1, cw - 1)
            fy, fx = y - y0, x - x0
            out[i, j] = ((1 - fy) * ((1 - fx) * crop[y0, x0] + fx * crop[y0, x1])
                         + fy * ((1 - fx) * crop[y1, x0] + fx * crop[y1, x1]))
    return out


def test_random_resized_crop_of_the_whole_image_is_the_image():
    img = image()
    out = A.random_resized_crop(A.RandomResizedCrop(scale=[1, 1], ratio=[1, 1]), KEYS[0],
                                jnp.asarray(image(6, 6)))
    np.testing.assert_allclose(out, image(6, 6), rtol=1e-6)
    assert img.shape == (6, 5, 3)


def test_random_resized_crop_is_a_bilinear_resize_of_one_whole_pixel_box():
    img = np.arange(8 * 8 * 2, dtype=np.float32).reshape(8, 8, 2) ** 1.5
    o = A.RandomResizedCrop(scale=[0.1, 0.6], ratio=[0.5, 2.0])
    for k in KEYS[:5]:
        out = np.asarray(A.random_resized_crop(o, k, jnp.asarray(img)))
        match = [(t, l, ch, cw) for ch in range(1, 9) for cw in range(1, 9)
                 for t in range(9 - ch) for l in range(9 - cw)
                 if 0.1 * 64 - 8 <= ch * cw <= 0.6 * 64 + 8
                 and np.allclose(out, bilinear_crop(img, t, l, ch, cw, 8, 8), rtol=1e-5)]
        assert match, "no crop box gives this output"


def test_brightness_multiplies_every_pixel_by_one_factor_in_range():
    img = image()
    for k in KEYS[:10]:
        out = np.asarray(A.color_jitter(A.ColorJitter(brightness=0.3), k, jnp.asarray(img)))
        f = out / img
        np.testing.assert_allclose(f, f.flat[0], rtol=1e-5)
        assert 0.7 <= f.flat[0] <= 1.3


def test_contrast_scales_the_distance_to_the_mean_gray():
    img = image()
    mean = (img @ np.array(A.GRAY, np.float32)).mean()
    out = np.asarray(A.color_jitter(A.ColorJitter(contrast=0.5), KEYS[3], jnp.asarray(img)))
    f = (out - mean) / (img - mean)
    np.testing.assert_allclose(f, f.flat[0], rtol=1e-4)
    assert 0.5 <= f.flat[0] <= 1.5


def test_saturation_leaves_gray_pixels_alone_and_scales_colour():
    gray = np.repeat(image(c=1), 3, axis=2)
    out = A.color_jitter(A.ColorJitter(saturation=0.9), KEYS[1], jnp.asarray(gray))
    np.testing.assert_allclose(out, gray, rtol=1e-5)
    img = image()
    g = (img @ np.array(A.GRAY, np.float32))[..., None]
    out = np.asarray(A.color_jitter(A.ColorJitter(saturation=0.9), KEYS[1], jnp.asarray(img)))
    f = (out - g) / (img - g)
    np.testing.assert_allclose(f, f.flat[0], rtol=1e-3)


def test_cutout_fills_one_clipped_square_with_the_fill():
    img, fill = image(10, 10), np.array([1.0, 2.0, 3.0], np.float32)
    for k in KEYS[:10]:
        out = np.asarray(A.cutout(A.Cutout(size=4), k, jnp.asarray(img), jnp.asarray(fill)))
        changed = (out != img).any(-1)
        ys, xs = np.nonzero(changed)
        assert 1 <= changed.sum() <= 16
        # the changed pixels form one full rectangle (a square cut by the border)
        assert changed.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert (ys.max() - ys.min() + 1) <= 4 and (xs.max() - xs.min() + 1) <= 4
        np.testing.assert_array_equal(out[changed], np.broadcast_to(fill, out[changed].shape))


def onehot(labels, n):
    return np.eye(n, dtype=np.float32)[labels]


def test_mixup_blends_images_and_labels_with_one_weight():
    x = np.stack([np.full((4, 4, 1), 10.0), np.full((4, 4, 1), 30.0)]).astype(np.float32)
    y = onehot([0, 1], 2)
    for k in KEYS[:8]:
        mx, my = map(np.asarray, A.mixup(A.Mix(alpha=0.4), k, jnp.asarray(x), jnp.asarray(y)))
        np.testing.assert_allclose(my.sum(1), 1, rtol=1e-6)
        for i in range(2):  # the weight of the first image equals the weight of class 0
            lam0 = (30.0 - mx[i, 0, 0, 0]) / 20.0
            np.testing.assert_allclose(my[i, 0], lam0, atol=1e-5)


def test_cutmix_label_weight_is_the_pasted_area():
    x = np.stack([np.zeros((8, 8, 1)), np.ones((8, 8, 1))]).astype(np.float32)
    y = onehot([0, 1], 2)
    for k in KEYS[:12]:
        mx, my = map(np.asarray, A.cutmix(A.Mix(alpha=1.0), k, jnp.asarray(x), jnp.asarray(y)))
        for i in range(2):
            own = (mx[i] == x[i]).mean()  # pixels still from the example itself
            np.testing.assert_allclose(my[i, i], own if (my[i] != y[i]).any() else 1.0,
                                       atol=1e-6)
            np.testing.assert_allclose(my[i].sum(), 1, rtol=1e-6)


def test_ops_work_in_pixel_space_whatever_the_normalisation():
    stats = {"kind": "standard", "mean": [100.0, 50.0, 0.0], "std": [20.0, 10.0, 5.0]}
    img = image()
    mean, std = np.array(stats["mean"], np.float32), np.array(stats["std"], np.float32)
    x = ((img - mean) / std)[None]
    steps = [("color_jitter", A.ColorJitter(brightness=0.5))]
    out, y = A.make_augment(steps, stats, 3)(KEYS[0], jnp.asarray(x), jnp.zeros(1, jnp.int32))
    pixels = np.asarray(out)[0] * std + mean
    f = pixels / img
    np.testing.assert_allclose(f, f.flat[0], rtol=1e-4)  # brightness of the pixels
    assert y.shape == (1,)  # no batch op: labels stay class ids


def test_raw_pixels_are_augmented_as_their_normalised_values_are():
    """Streamed images reach the step as raw uint8 pixels (data.to_network) and are
    augmented as bytes; every op must give what it gives on the normalised batch."""
    from archspec.data import apply_normalization

    stats = {"kind": "standard", "mean": [100.0, 50.0, 20.0], "std": [20.0, 10.0, 5.0]}
    raw = np.random.default_rng(1).integers(0, 256, (4, 12, 10, 3), dtype=np.uint8)
    # the ops whose arithmetic meets the bytes first (flip and cutmix only move them)
    steps = [("random_crop", A.RandomCrop(padding=2)),
             ("random_resized_crop", A.RandomResizedCrop()), ("cutout", A.Cutout(size=3)),
             ("mixup", A.Mix(alpha=0.4))]
    fn = jax.jit(A.make_augment(steps, stats, 3))
    labels = jnp.arange(4) % 3
    got, gy = fn(KEYS[0], jnp.asarray(raw), labels)
    want, wy = fn(KEYS[0], jnp.asarray(apply_normalization(raw, stats)), labels)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gy, wy)


def test_a_batch_op_turns_labels_into_probabilities_and_the_same_key_repeats():
    x = jnp.asarray(np.stack([image(seed=i) for i in range(4)]))
    y = jnp.array([0, 1, 2, 1])
    steps = [("flip", A.Flip()), ("mixup", A.Mix(alpha=0.2)), ("cutout", A.Cutout(size=2))]
    fn = jax.jit(A.make_augment(steps, {"kind": "none"}, 3))
    a, ya = fn(KEYS[5], x, y)
    b, yb = fn(KEYS[5], x, y)
    assert ya.shape == (4, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    c, _ = fn(KEYS[6], x, y)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("entry,ok", [
    ("flip", True), ({"flip": None}, True), ({"random_crop": {"padding": 4}}, True),
    ({"flip": {}, "mixup": {"alpha": 1.0}}, False), ("flp", False),
    ({"cutout": {"size": 0}}, False), ({"mixup": {"alpha": 0}}, False),
    ({"random_resized_crop": {"scale": [0.5, 0.1]}}, False),
    ({"random_resized_crop": {"scale": [0.5, 1.5]}}, False),
    ({"color_jitter": {"brightness": -0.1}}, False), ({"flip": {"mode": "diagonal"}}, False)])
def test_each_entry_is_validated(entry, ok):
    if ok:
        assert A.AugmentStep.model_validate(entry).op[0] in A.OPS
    else:
        with pytest.raises(ValidationError):
            A.AugmentStep.model_validate(entry)


def test_ops_that_cannot_apply_to_the_data_are_named():
    steps = [A.AugmentStep.model_validate(e) for e in
             ("flip", {"color_jitter": {"saturation": 0.2}}, {"mixup": {"alpha": 0.2}})]
    assert [p[:2] for p in A.check_steps(steps, (8,), "regression")] == [
        (0, "flip"), (1, "color_jitter"), (2, "mixup")]
    assert [p[:2] for p in A.check_steps(steps, (8, 8, 1), "classification")] == [
        (1, "color_jitter")]
    assert A.check_steps(steps, (8, 8, 3), "classification") == []
    # masks (a label per pixel) would have to move with their images: refused, not ignored
    masks = [A.AugmentStep.model_validate(e) for e in
             ("flip", {"color_jitter": {"brightness": 0.2}}, {"random_crop": {"padding": 2}})]
    assert [p[:2] for p in A.check_steps(masks, (8, 8, 3), "classification", (8, 8))] == [
        (0, "flip"), (2, "random_crop")]


def test_a_flip_of_segmentation_data_is_refused_at_its_line(tmp_path):
    from helpers import ROOT, run_cli

    r = run_cli("train", ROOT / "experiments/shapes_unet.yaml", "--steps", "1",
                "--output", tmp_path, "--set", "augment=[flip]")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "flip cannot apply to this data" in r.stderr + r.stdout
    assert "not supported yet" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


# --- through the CLI ---------------------------------------------------------------------
import textwrap  # noqa: E402

from helpers import only_run, run_cli  # noqa: E402

EXPERIMENT = """\
name: aug
architecture:
  name: tiny
  input: {{shape: [32, 32, 3]}}
  layers:
    - conv: {{maps: 4, kernel: 3, stride: 2, activation: relu}}
    - pool: {{op: avg, global: true}}
    - dense: {{units: 4, activation: linear, name: logits}}
  heads:
    shapes: {{from: logits, output: softmax}}
data: {{name: shapes, options: {{n: 200}}}}
steps: 3
batch_size: 16
output: {out}
augment:
{augment}
loss: {{shapes: {{kind: categorical_crossentropy, label_smoothing: 0.1}}}}
"""


def experiment(tmp_path, augment):
    path = tmp_path / "aug.yaml"
    path.write_text(EXPERIMENT.format(out=tmp_path / "runs",
                                      augment=textwrap.indent(augment, "  ")))
    return path


def test_train_with_augmentation_and_data_show(tmp_path, capsys):
    exp = experiment(tmp_path, "- random_crop: {padding: 2}\n- flip\n- cutmix: {alpha: 1.0}\n")
    r = run_cli("train", exp)
    assert r.returncode == 0, r.stdout + r.stderr
    # data show in this process: the same code path as the command, without a second start-up
    from archspec.commands.data import show

    show(file=exp, output=tmp_path / "ex.png", count=8, set_=[])
    out = capsys.readouterr().out
    assert (tmp_path / "ex.png").stat().st_size > 1000
    assert "circle" in out and "all" in out  # the class balance table
    assert "random_crop, flip, cutmix" in out
    # the run's config.yaml loads again (eval and resume read it) with the same ops
    from archspec.experiment import load as E

    again = E.load(resume=only_run(tmp_path / "runs")).exp.augment
    assert [s.op for s in again] == [("random_crop", A.RandomCrop(padding=2)),
                                     ("flip", A.Flip()), ("cutmix", A.Mix(alpha=1.0))]


def test_an_op_that_does_not_fit_the_data_is_located(tmp_path):
    exp = experiment(tmp_path, "- flip\n- color_jitter: {saturation: 0.5}\n")
    text = exp.read_text().replace("[32, 32, 3]", "[32, 32, 1]")
    exp.write_text(text)
    r = run_cli("train", exp)
    assert r.returncode == 2
    assert f"{exp}:17:5: error: augment[1]: color_jitter cannot apply" in r.stderr
    assert "Traceback" not in r.stderr


# cutout with many squares: the compiled program does not grow with `count` (a loop, not
# `count` unrolled copies), and a count beyond MAX_CUTOUTS is a located error.

from helpers import ROOT  # noqa: E402


def reference(count, size, key, img, fill):
    """The squares NumPy draws from the same keys: centre (cy, cx), clipped at the border."""
    out, (h, w, _) = img.copy(), img.shape
    for k in jax.random.split(key, count):
        ky, kx = jax.random.split(k)
        cy = int(jax.random.randint(ky, (), 0, h))
        cx = int(jax.random.randint(kx, (), 0, w))
        top, left = cy - size // 2, cx - size // 2
        out[max(top, 0):max(top + size, 0), max(left, 0):max(left + size, 0)] = fill
    return out


def test_many_squares_are_the_reference_squares():
    img = np.random.default_rng(0).uniform(0, 255, (12, 9, 3)).astype(np.float32)
    fill = np.array([1.0, 2.0, 3.0], np.float32)
    for i, count in enumerate((1, 5, A.MAX_CUTOUTS)):
        key = jax.random.key(i)
        got = A.cutout(A.Cutout(size=3, count=count), key, jnp.asarray(img), jnp.asarray(fill))
        np.testing.assert_array_equal(np.asarray(got), reference(count, 3, key, img, fill))


def test_the_program_does_not_grow_with_the_count():
    img, fill = jnp.zeros((32, 32, 3)), jnp.zeros((3,))

    def size(count):
        fn = jax.vmap(lambda k, x: A.cutout(A.Cutout(size=8, count=count), k, x, fill))
        keys = jax.random.split(jax.random.key(0), 4)
        return len(jax.make_jaxpr(fn)(keys, jnp.stack([img] * 4)).jaxpr.eqns)

    assert size(A.MAX_CUTOUTS) == size(2)


def test_a_thousand_squares_are_refused_at_their_line(tmp_path):
    exp = tmp_path / "e.yaml"
    exp.write_text(f"name: e\narchitecture: {ROOT / 'architectures' / 'lenet5.yaml'}\n"
                   "data: {name: shapes, options: {n: 100}}\n"
                   "augment:\n  - cutout: {size: 4, count: 1000}\n")
    r = run_cli("train", exp, "--smoke", "--output", tmp_path / "runs", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    text = " ".join(r.stderr.split())
    assert f"{exp}:5:" in text and "count" in text and f"{A.MAX_CUTOUTS}" in text
    assert not (tmp_path / "runs").exists()
