"""Datasets for archspec: built-in sets, user files, splits, normalisation, batching.

Pure NumPy (plus scikit-learn and PIL for some sources); JAX is never imported here.
The trainer passes device placement in through `prefetch(put=...)`.
"""
from .batching import Stream, batch_indices, batches, steps_per_epoch
from .config import DataConfig
from .dataset import Dataset, Split
from .errors import DataError
from .loader import load_dataset
from .normalize import PIXELS, apply_normalization, normalization_terms, to_network
from .prefetch import prefetch

__all__ = ["PIXELS", "DataConfig", "DataError", "Dataset", "Split", "Stream",
           "apply_normalization", "batch_indices", "batches", "load_dataset",
           "normalization_terms", "prefetch", "steps_per_epoch", "to_network"]
