"""The computation of training: losses, optimisers, augmentation on the device, the jitted
step over a mesh, an epoch as scanned chunks, health checks, scoring on a split, and the
reporter protocol the loop talks to. Nothing here knows about run folders or YAML files."""
