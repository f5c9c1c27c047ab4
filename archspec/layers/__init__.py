"""Layer kinds, one module per family. Importing this package registers every kind."""
from archspec.layers import (activation, conv, dense, embed, merge, norm,  # noqa: F401
                             pool, shape)
from archspec.layers.base import REGISTRY, Layer, ShapeError

__all__ = ["REGISTRY", "Layer", "ShapeError"]
