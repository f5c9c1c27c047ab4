"""Multi-host start-up: several processes, one per host, joined into one device mesh
(see README, "Many devices and hosts")."""
from __future__ import annotations

import os

LAUNCH_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "ARCHSPEC_DISTRIBUTED")


def is_multi_host() -> bool:
    """Whether a launcher started this process as one of several."""
    return any(os.environ.get(name) for name in LAUNCH_VARIABLES)


def start() -> None:
    """Join the other processes of the launch before any device is touched; a single
    process does nothing."""
    if is_multi_host():
        import jax

        jax.distributed.initialize()
