"""cutout with many squares: the compiled program does not grow with `count` (a loop, not
`count` unrolled copies), the squares are the ones a NumPy reference draws, and a count
beyond MAX_CUTOUTS is a located error before anything compiles."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from helpers import ROOT, run_cli

from archspec.engine import augment as A


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
