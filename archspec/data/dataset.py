"""The containers a loaded dataset travels in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .normalize import PIXELS

Task = Literal["classification", "regression"]


@dataclass
class Split:
    """x: (N, *input_shape) float32, int32 tokens, or uint8 raw pixels (a streamed image
    folder: normalize.to_network normalises its batches on the device). y: (N,) int32
    class ids, or (N, k) float32 regression targets."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Dataset:
    name: str
    task: Task
    train: Split
    val: Split
    test: Split
    num_classes: int | None
    class_names: list[str] | None
    input_shape: tuple[int, ...]
    norm_stats: dict  # from the train split only; `apply_normalization` reuses it
    vocabulary: list[str] | None = None  # token sets: the word of each id

    def example(self) -> np.ndarray:
        """One zero example as the network takes it (to initialise or trace a model)."""
        dtype = np.float32 if self.train.x.dtype == PIXELS else self.train.x.dtype
        return np.zeros((1, *self.input_shape), dtype)


@dataclass
class Raw:
    """What a source hands the loader before shaping, splitting and normalising.

    `image` marks x as (N, H, W, C) pixels, which may be resized; `tokens` marks x as
    integer ids, kept as int32 and never normalised. Other x may arrive in any numeric
    dtype (uint8 saves memory until the examples are chosen) and becomes float32.
    `test` is a pre-made test split when the source has one; `source` names the file or
    folder that errors about the examples point at. Class ids arrive already checked
    (see labels.py).
    """

    x: np.ndarray
    y: np.ndarray
    task: Task
    num_classes: int | None
    class_names: list[str] | None
    source: str
    image: bool = False
    tokens: bool = False
    test: tuple[np.ndarray, np.ndarray] | None = None
    vocabulary: list[str] | None = None  # token sets: the word of each id (its length: the size)
