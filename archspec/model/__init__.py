"""The model stage: a resolved graph compiled into Flax modules (build), and its summary from
the real Flax variables."""
