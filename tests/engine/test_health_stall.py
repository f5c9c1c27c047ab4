"""The stall detector: accuracy at chance is a stall only once the loss has stopped improving
and the run has taken `health.chance_min_steps` steps."""
from __future__ import annotations

import pytest

from archspec.engine.health import AttemptFailed, Monitor
from archspec.experiment.config import Health


def _monitor(**cfg) -> Monitor:
    return Monitor(Health(**cfg), [], lambda message: None)


def test_a_falling_loss_below_chance_is_not_a_stall():
    """The reported case: 3 classes, 63 examples, batch 16 (4 steps an epoch), an unlucky
    start below chance while the loss falls 2.24 -> 2.18 -> 2.12: it was declared stalled
    at step 12. Here ten such epochs pass."""
    monitor = _monitor()
    loss, accuracy = 2.24, 0.048
    for epoch in range(1, 11):
        monitor.check_chance(4 * epoch, accuracy, 0.3651, loss)
        loss, accuracy = loss - 0.06, accuracy + 0.016 * (epoch < 5)


def test_a_flat_loss_at_chance_is_a_stall_after_the_minimum_steps():
    monitor = _monitor(chance_epochs=3, chance_min_steps=30)
    losses = [1.30, 1.12, 1.101, 1.0995, 1.0990, 1.0988, 1.0987, 1.0987]
    declared = None
    for epoch, loss in enumerate(losses, start=1):
        try:
            monitor.check_chance(6 * epoch, 0.35, 0.35, loss)
        except AttemptFailed as failed:
            declared = failed
            break
    assert declared is not None and declared.outcome == "stalled"
    # by hand: epochs 2 and 3 improve by over 1% on the best before them (1.12 < 0.99 * 1.30,
    # 1.101 < 0.99 * 1.12); epochs 4.. do not, the third of them is epoch 6 (step 36)
    assert declared.step == 36
    assert "stopped improving" in declared.detail


def test_no_stall_before_the_minimum_steps_even_when_flat():
    monitor = _monitor(chance_epochs=2, chance_min_steps=100)
    for epoch in range(1, 16):
        monitor.check_chance(6 * epoch, 0.3, 0.35, 1.0986)  # flat from the start, 90 steps
    with pytest.raises(AttemptFailed):
        monitor.check_chance(102, 0.3, 0.35, 1.0986)


def test_accuracy_above_chance_resets_the_count():
    monitor = _monitor(chance_epochs=2, chance_min_steps=0)
    monitor.check_chance(10, 0.35, 0.35, 1.0)
    monitor.check_chance(20, 0.35, 0.35, 1.0)   # flat once
    monitor.check_chance(30, 0.60, 0.35, 1.0)   # off chance: the count starts again
    monitor.check_chance(40, 0.35, 0.35, 1.0)
    with pytest.raises(AttemptFailed):
        monitor.check_chance(50, 0.35, 0.35, 1.0)
