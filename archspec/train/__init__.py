"""The training loop: prepare a run's set-up, fit with restarts, resume, stop signals."""
