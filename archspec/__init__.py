"""archspec: write a neural network down in YAML, see exactly what it is, and train it."""

__version__ = "0.1.0"
