"""Per-pixel heads: the per-pixel cross-entropy, pixel accuracy and mean IoU against NumPy
computed by hand, the generated masks against their images, and the head check refusing a
map whose size is not the masks'."""
from __future__ import annotations

import numpy as np
import pytest

from archspec.data.config import DataConfig
from archspec.data.loader import load_dataset
from archspec.data.sources.shape_masks import generate
from archspec.errors import SpecErrors
from archspec.spec.resolve import load_architecture_text
from archspec.engine.head_losses import head_losses
from archspec.engine.losses import correct, iou_counts, mean_iou, per_example


def test_per_pixel_cross_entropy_and_pixel_accuracy_by_hand():
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    y = rng.integers(6, size=(3, 4, 5))
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, y[..., None], -1)[..., 0]
    got = per_example("categorical_crossentropy", "softmax", jnp.asarray(logits), jnp.asarray(y))
    np.testing.assert_allclose(got, -picked.mean(axis=(1, 2)), rtol=1e-5)
    acc = correct("categorical_crossentropy", jnp.asarray(logits), jnp.asarray(y))
    np.testing.assert_allclose(acc, (logits.argmax(-1) == y).mean(axis=(1, 2)), rtol=1e-6)


def test_mean_iou_over_a_split_with_a_class_absent():
    true = np.array([[0, 0, 1, 1], [0, 0, 1, 3]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 0, 3]])
    # class 0: both 3, union 5; class 1: both 2, union 4; class 2: nowhere (left out);
    # class 3: both 1, union 1. Counted in two "batches", summed before dividing.
    i1, u1 = iou_counts(pred[:1], true[:1], 4)
    i2, u2 = iou_counts(pred[1:], true[1:], 4)
    assert (i1 + i2).tolist() == [3, 2, 0, 1] and (u1 + u2).tolist() == [5, 4, 0, 1]
    assert mean_iou(i1 + i2, u1 + u2) == pytest.approx((3 / 5 + 2 / 4 + 1 / 1) / 3)
    # a mean of the two batches' IoUs would differ: 0.5·((1/3+2/3)/2 + (2/3+1/2+1)/3)
    assert mean_iou(i1, u1) != mean_iou(i1 + i2, u1 + u2)


def test_masks_match_their_images():
    x, y = generate(64, 3, (24, 28, 3), seed=5, count=2)
    assert x.shape == (64, 24, 28, 3) and y.shape == (64, 24, 28) and y.dtype == np.int32
    assert set(np.unique(y)) <= {0, 1, 2, 3} and (y > 0).any() and (y == 0).any()
    for img, mask in zip(x, y):
        # one background colour, and shapes far from it (noise std 0.05 is tiny)
        bg = np.median(img[mask == 0], axis=0)
        assert np.abs(img[mask == 0] - bg).max(-1).mean() < 0.1
        assert np.abs(img[mask > 0] - bg).max(-1).min() > 0.05
    same = generate(64, 3, (24, 28, 3), seed=5, count=2)
    assert np.array_equal(same[1], y)


def test_loaded_masks_have_the_inputs_size():
    ds = load_dataset(DataConfig(name="shapes_masks", options={"n": 40, "classes": 2}),
                      (16, 16, 1), seed=0)
    assert ds.train.x.shape[1:] == (16, 16, 1) and ds.train.y.shape[1:] == (16, 16)
    assert ds.num_classes == 3 and ds.class_names == ["background", "circle", "square"]


NET = """name: seg
input: {shape: [16, 16, 1]}
layers:
  - conv: {maps: 4, kernel: 3, padding: same, activation: relu}
  - pool: {op: max, size: %d}
  - conv: {maps: %d, kernel: 1, name: logits}
heads:
  mask: {from: logits, output: softmax}
"""


def _heads(pool: int, maps: int):
    from types import SimpleNamespace

    ds = load_dataset(DataConfig(name="shapes_masks", options={"n": 20, "classes": 2}),
                      (16, 16, 1), seed=0)
    graph = load_architecture_text(NET % (pool, maps), "seg.yaml")
    return head_losses(SimpleNamespace(loss={}), graph, ds)


def test_head_check_accepts_a_map_of_the_masks_size():
    assert [h.kind for h in _heads(1, 3)] == ["categorical_crossentropy"]


def test_head_check_refuses_a_map_of_another_size_at_the_head():
    with pytest.raises(SpecErrors) as err:
        _heads(2, 3)
    text = str(err.value)
    assert "seg.yaml:8:" in text
    assert "the head's map is 8×8 but the data's masks are 16×16" in text
    with pytest.raises(SpecErrors, match="3 classes"):
        _heads(1, 5)


def test_expect_reads_the_mean_iou():
    from archspec.experiment.expect import Facts, judge, name_problem

    facts = Facts(splits={"test": {"mean_iou_mask": 0.9, "accuracy_mask": 0.98}}, heads=["mask"])
    assert [o.met for o in judge({"test.mean_iou": ">= 0.8", "test.mean_iou_mask": "> 0.95"},
                                 facts)] == [True, False]
    assert name_problem("test.mean_iou") is None
