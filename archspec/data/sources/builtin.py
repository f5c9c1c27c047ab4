"""scikit-learn's bundled datasets: nothing to download, so they always work offline."""
from __future__ import annotations

import numpy as np

from ..dataset import Raw


def load_digits(cfg, options, input_shape, seed) -> Raw:
    """1797 real 8x8 grey digit scans, values 0..16, as (N, 8, 8, 1) images."""
    from sklearn.datasets import load_digits as sk_load

    bunch = sk_load()
    x = bunch.images[..., None].astype(np.float32)
    return Raw(x, bunch.target.astype(np.int32), "classification", 10,
               [str(n) for n in bunch.target_names], "sklearn:digits", image=True)


def _tabular(name: str, loader) -> Raw:
    bunch = loader()
    names = [str(n) for n in bunch.target_names]
    return Raw(bunch.data.astype(np.float32), bunch.target.astype(np.int32),
               "classification", len(names), names, f"sklearn:{name}")


def load_wine(cfg, options, input_shape, seed) -> Raw:
    from sklearn.datasets import load_wine as sk_load
    return _tabular("wine", sk_load)


def load_breast_cancer(cfg, options, input_shape, seed) -> Raw:
    from sklearn.datasets import load_breast_cancer as sk_load
    return _tabular("breast_cancer", sk_load)


def load_iris(cfg, options, input_shape, seed) -> Raw:
    from sklearn.datasets import load_iris as sk_load
    return _tabular("iris", sk_load)
