"""Layer kinds, one module per family. Importing this package registers every kind."""
from archspec.layers import (activation, attention, conv, conv_transpose,  # noqa: F401
                             dense, embed, learned, merge, norm, pad, pool, recurrent, shape,
                             tensor, upsample)
from archspec.layers.base import REGISTRY, Layer, ShapeError

__all__ = ["REGISTRY", "Layer", "ShapeError"]
