"""The `mnist1d` data source: the paper's data set through the mnist1d package, its splits,
and the error a user without the package gets."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from helpers import ROOT, run_cli

HAVE_MNIST1D = importlib.util.find_spec("mnist1d") is not None
needs_mnist1d = pytest.mark.skipif(not HAVE_MNIST1D,
                                   reason="the mnist1d package is not installed "
                                          "(pip install mnist1d)")


def _load(**data):
    from archspec.data import DataConfig, load_dataset

    return load_dataset(DataConfig(name="mnist1d", **data), (40, 1), seed=0)


@needs_mnist1d
def test_the_papers_split_with_val_carved_out_of_train():
    """The 4,000 training series of the paper's data set (generator seed 42) become 3,600
    train + 400 val; its 1,000 test series are the test split, unchanged."""
    from mnist1d.data import get_dataset_args, make_dataset

    ref = make_dataset(get_dataset_args())  # the package's own call, as the paper makes it
    ds = _load(val_fraction=0.1, normalize="none")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (3600, 400, 1000)
    assert ds.input_shape == (40, 1) and ds.num_classes == 10
    # test: the same series in a seeded order; train + val: exactly the reference's 4,000
    np.testing.assert_allclose(np.sort(ds.test.x[:, :, 0], axis=0),
                               np.sort(ref["x_test"], axis=0), rtol=1e-6)
    both = np.concatenate([ds.train.x, ds.val.x])[:, :, 0]
    order = np.lexsort(both.T)
    ref_order = np.lexsort(ref["x"].T)
    np.testing.assert_allclose(both[order], ref["x"][ref_order], rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([ds.train.y, ds.val.y])[order],
                                  ref["y"][ref_order])


@needs_mnist1d
def test_val_fraction_zero_trains_on_all_4000():
    ds = _load(val_fraction=0.0)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (4000, 0, 1000)


@needs_mnist1d
def test_generation_is_deterministic_and_leaves_numpys_global_seed_alone():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    a = _load(options={"samples": 200})
    after = np.random.random(3)
    b = _load(options={"samples": 200})
    np.testing.assert_array_equal(after, expected)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert (len(a.train) + len(a.val), len(a.test)) == (160, 40)
    c = _load(options={"samples": 200, "generator_seed": 7})
    assert not np.array_equal(np.sort(a.test.x, axis=0), np.sort(c.test.x, axis=0))


@needs_mnist1d
def test_too_few_samples_for_a_split_is_a_data_error():
    from archspec.data import DataError

    with pytest.raises(DataError, match="empty split"):
        _load(options={"samples": 20, "train_split": 0.01})


@needs_mnist1d
def test_generated_once_then_read_from_the_data_cache(tmp_path, monkeypatch):
    """The second load reads the arrays the first one generated (no mnist1d call), and they
    are the generator's own; other options are another entry."""
    from mnist1d import data

    monkeypatch.setenv("ARCHSPEC_DATA_CACHE_DIR", str(tmp_path))
    first = _load(options={"samples": 300})
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 1
    monkeypatch.setattr(data, "make_dataset", lambda *a: pytest.fail("generated again"))
    again = _load(options={"samples": 300})
    np.testing.assert_array_equal(first.train.x, again.train.x)
    np.testing.assert_array_equal(first.test.y, again.test.y)
    monkeypatch.undo()
    monkeypatch.setenv("ARCHSPEC_DATA_CACHE_DIR", str(tmp_path))
    _load(options={"samples": 300, "generator_seed": 1})
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 2


@needs_mnist1d
def test_a_copy_without_package_metadata_is_generated_not_cached(tmp_path, monkeypatch):
    """mnist1d importable but without its metadata (a source checkout on the path): no
    version keys the cache, so the data is generated, and nothing is cached."""
    import importlib.metadata

    def no_metadata(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setenv("ARCHSPEC_DATA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(importlib.metadata, "version", no_metadata)
    ds = _load(options={"samples": 200})
    assert (len(ds.train) + len(ds.val), len(ds.test)) == (160, 40)
    assert not list(tmp_path.glob("mnist1d-*"))


def test_without_the_package_the_error_says_how_to_install_it(tmp_path):
    """An `mnist1d` that cannot be imported (as when it is not installed) ends the run
    with exit 2 and the pip command, never a traceback."""
    fake = tmp_path / "site" / "mnist1d"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named mnist1d')\n")
    exp = tmp_path / "m.yaml"
    exp.write_text(f"name: m\narchitecture: {ROOT / 'architectures' / 'mnist1d_cnn.yaml'}\n"
                   "data: {name: mnist1d}\nepochs: 1\n")
    r = run_cli("train", exp, "--output", tmp_path / "runs",
                env={"PYTHONPATH": f"{fake.parent}:{ROOT}", "ARCHSPEC_NO_DATA_CACHE": "1"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "pip install mnist1d" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
