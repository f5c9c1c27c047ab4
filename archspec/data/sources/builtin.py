"""scikit-learn's bundled datasets: nothing to download, so they always work offline.
Importing scikit-learn and parsing its files take ~1.5 s, at every run: the arrays are kept
in archspec's data cache, keyed by scikit-learn's version."""
from __future__ import annotations

import numpy as np

from ..cache import cached_arrays
from ..dataset import Raw


def _arrays(name: str, field: str) -> dict:
    """x (the bunch's `field`), y and the class names of sklearn's `load_<name>()`."""
    from importlib.metadata import version

    def make():
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{name}")()
        return {"x": np.asarray(getattr(bunch, field)), "y": np.asarray(bunch.target),
                "names": np.asarray([str(n) for n in bunch.target_names])}

    return cached_arrays(f"sklearn-{name}", {"scikit-learn": version("scikit-learn")}, make)


def load_digits(cfg, options, input_shape, seed) -> Raw:
    """1797 real 8x8 grey digit scans, values 0..16, as (N, 8, 8, 1) images."""
    a = _arrays("digits", "images")
    return Raw(a["x"][..., None].astype(np.float32), a["y"].astype(np.int32), "classification",
               10, [str(n) for n in a["names"]], "sklearn:digits", image=True)


def _tabular(name: str) -> Raw:
    a = _arrays(name, "data")
    names = [str(n) for n in a["names"]]
    return Raw(a["x"].astype(np.float32), a["y"].astype(np.int32),
               "classification", len(names), names, f"sklearn:{name}")


def load_wine(cfg, options, input_shape, seed) -> Raw:
    return _tabular("wine")


def load_breast_cancer(cfg, options, input_shape, seed) -> Raw:
    return _tabular("breast_cancer")


def load_iris(cfg, options, input_shape, seed) -> Raw:
    return _tabular("iris")
