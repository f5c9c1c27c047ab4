"""Weights in and out: read tensor files (safetensors, npz, PyTorch state dicts), convert
PyTorch's layouts to Flax's by layer kind, and match a file's names to a spec's layers through
name maps kept as data (archspec/weights/maps/*.yaml). `load.load_into` is the one entry point
a loader calls; `load.export_tensors` is its reverse."""
