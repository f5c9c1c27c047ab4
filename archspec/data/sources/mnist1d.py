"""MNIST-1D (Greydanus 2020): ten 1-D digit templates, padded, translated, sheared, scaled
and noised into length-40 signals. Generated offline by the `mnist1d` package, which is
not an archspec dependency (`pip install mnist1d`).

The defaults give the paper's benchmark: 5,000 examples from generator seed 42, the first
4,000 (80%) the training split and the last 1,000 the test split. `data.val_fraction`
carves a validation split out of the 4,000 (0: train on all of them). Each example is a
(40, 1) series: time, one channel.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from ..cache import cached_arrays
from ..dataset import Raw
from ..errors import DataError
from ..options import SourceOptions

PAPER_SEED = 42   # the seed of the published dataset (mnist1d.data.get_dataset_args)
CLASSES = 10


class Options(SourceOptions):
    samples: int = Field(5000, ge=20, description="examples generated (train + test); "
                         "the paper's 5000")
    train_split: float = Field(0.8, gt=0, lt=1, description="the share of the examples "
                               "in the training split; the rest is the test split")
    generator_seed: int = Field(PAPER_SEED, ge=0, lt=2**32, description="seed of the "
                                "generator; 42 is the published dataset")
    shuffle_seq: bool = Field(False, description="permute the 40 time steps (one fixed "
                              "permutation): the paper's test of spatial priors")


def load(cfg, options: Options, input_shape, seed) -> Raw:
    x, y, x_test, y_test = generate(options)
    return Raw(x, y, "classification", CLASSES, [str(i) for i in range(CLASSES)],
               "mnist1d", test=(x_test, y_test))


def generate(options: Options):
    """(x, y, x_test, y_test): float32 (N, 40, 1) series and int32 labels, the same for
    the same options on every machine. Generating takes seconds (importing the package
    too): the arrays are kept in archspec's data cache, keyed by the options and the
    package's version."""
    version = _version()
    made = _generate(options) if version is None else cached_arrays(
        "mnist1d", {**options.model_dump(), "mnist1d": version}, lambda: _generate(options))
    x, x_test = (made[k].astype(np.float32)[..., None] for k in ("x", "x_test"))
    y, y_test = (made[k].astype(np.int32) for k in ("y", "y_test"))
    if not len(y) or not len(y_test):
        raise DataError(f"{options.samples} examples with train_split {options.train_split} "
                        "leave an empty split", file="mnist1d", option="train_split",
                        hint="use more samples or a train_split nearer 0.5")
    return x, y, x_test, y_test


def _generate(options: Options) -> dict:
    data = _module()
    args = data.get_dataset_args()
    args.num_samples = options.samples
    args.train_split = options.train_split
    args.seed = options.generator_seed
    args.shuffle_seq = options.shuffle_seq
    # make_dataset seeds NumPy's global generator: put back whatever was there before.
    saved = np.random.get_state()
    try:
        made = data.make_dataset(args)
    finally:
        np.random.set_state(saved)
    return {k: np.asarray(made[k]) for k in ("x", "y", "x_test", "y_test")}


def _version() -> str | None:
    """The installed package's version; None for a copy without package metadata (a
    source checkout on the path: generated every time, since no version keys its cache).
    Neither: the error that says how to install it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mnist1d")
    except PackageNotFoundError:
        _module()
        return None


def _module():
    try:
        from mnist1d import data
    except ImportError:
        raise DataError("dataset 'mnist1d' needs the mnist1d package, which is not "
                        "installed", hint="pip install mnist1d (it generates the data "
                        "offline; archspec does not depend on it)") from None
    return data
