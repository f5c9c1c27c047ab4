"""Using a trained run or a network: evaluate, predict and bench."""
