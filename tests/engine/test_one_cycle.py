"""The one_cycle schedule: the rate of every step is optax's cosine one-cycle value, and the
optimiser applies it."""
from __future__ import annotations

import numpy as np
import optax
import pytest


def test_one_cycle_rates_are_optaxs():
    from archspec.engine.optim import make_optimizer
    from archspec.experiment.config import Optimizer

    cfg = Optimizer(name="sgd", lr=0.4, schedule={"name": "one_cycle", "pct_start": 0.25,
                                                   "div_factor": 10.0,
                                                   "final_div_factor": 100.0})
    _, lr_fn = make_optimizer(cfg, 200)
    ref = optax.cosine_onecycle_schedule(200, 0.4, 0.25, 10.0, 100.0)
    steps = np.arange(0, 201)
    want = np.array([float(ref(int(s))) for s in steps])
    np.testing.assert_allclose(np.asarray(lr_fn(steps)), want, rtol=1e-5)  # float32
    assert want[0] == pytest.approx(0.04) and want[50] == pytest.approx(0.4)
    assert want[200] == pytest.approx(0.4 / 1000, rel=1e-4)


def test_sgd_moves_by_the_scheduled_rate():
    """With a constant gradient of 1, plain SGD moves each step by exactly that step's rate."""
    import jax.numpy as jnp

    from archspec.engine.optim import make_optimizer
    from archspec.experiment.config import Optimizer

    tx, lr_fn = make_optimizer(Optimizer(name="sgd", lr=1.0,
                                         schedule={"name": "one_cycle"}), 20)
    params = {"w": jnp.zeros(())}
    state = tx.init(params)
    for step in range(20):
        updates, state = tx.update({"w": jnp.ones(())}, state, params)
        assert float(updates["w"]) == pytest.approx(-float(lr_fn(step)), rel=1e-6)


def test_one_cycle_refuses_a_second_warm_up():
    from pydantic import ValidationError

    from archspec.experiment.config import Schedule

    with pytest.raises(ValidationError, match="remove warmup_steps"):
        Schedule(name="one_cycle", warmup_steps=10)
