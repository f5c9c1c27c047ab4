"""Layer kinds, one module per family. Importing this package registers every kind."""
from archspec.layers import (activation, attention, conv, dense, embed, merge,  # noqa: F401
                             norm, pool, recurrent, shape)
from archspec.layers.base import REGISTRY, Layer, ShapeError

__all__ = ["REGISTRY", "Layer", "ShapeError"]
