"""Training and evaluation: experiment configs, losses, optimisers, the jitted step over a
device mesh, the loop, checkpoints and run folders."""
