"""Multi-host start-up: several processes, one per host, joined into one device mesh
(see README, "Many devices and hosts").

A launch sets, in every process, JAX_COORDINATOR_ADDRESS (host:port of process 0),
JAX_NUM_PROCESSES and JAX_PROCESS_ID (a cluster launcher such as SLURM provides the last
two itself), and ARCHSPEC_RUN_NAME, so that all processes write one run folder. Each
process then feeds its own slice of every global batch (step.put_batch), joins every
checkpoint save and restore, and process 0 alone writes the run's records and train.log."""
from __future__ import annotations

import os

from archspec.errors import ArchspecError


class LaunchError(ArchspecError):
    """Another process of a multi-process launch failed (exit 1)."""

    exit_code = 1

LAUNCH_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "ARCHSPEC_DISTRIBUTED")


def is_multi_host() -> bool:
    """Whether a launcher started this process as one of several."""
    return any(os.environ.get(name) for name in LAUNCH_VARIABLES)


def is_primary() -> bool:
    """Whether this process writes what a run writes once (process 0, or the only one)."""
    if not is_multi_host():
        return True
    import jax

    return jax.process_index() == 0


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise ArchspecError(f"{name}={value!r} is not a whole number",
                            "JAX_NUM_PROCESSES is the number of processes of the launch, "
                            "JAX_PROCESS_ID this process's index (0 to JAX_NUM_PROCESSES - 1)"
                            ) from None


def start() -> None:
    """Join the other processes of the launch before any device is touched; a single
    process does nothing. CPU devices of different processes talk through gloo unless
    JAX_CPU_COLLECTIVES_IMPLEMENTATION names another implementation (mpi)."""
    if not is_multi_host():
        return
    import jax

    if not os.environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(num_processes=_env_int("JAX_NUM_PROCESSES"),
                                   process_id=_env_int("JAX_PROCESS_ID"))
    except (ValueError, TypeError) as exc:  # a variable missing or out of range
        raise ArchspecError(f"cannot join the multi-host launch: {exc}",
                            "set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES=n and "
                            "JAX_PROCESS_ID=i (0 to n - 1) in every process, or unset "
                            "them to train in one process") from None


_agreed = 0  # how many values this process has agreed on so far (each gets its own key)
AGREE_TIMEOUT_MS = 5 * 60 * 1000


def agree(make):
    """Process 0's `make()` (a string), given to every process of the launch: one value
    where each process computing its own would differ (a run folder's timestamp). A single
    process just calls `make()`. An error in process 0 is raised in the others too."""
    import jax

    global _agreed
    if jax.process_count() == 1:
        return make()
    from jax._src.distributed import global_state

    client, _agreed = global_state.client, _agreed + 1
    key = f"archspec/agree/{_agreed}"
    if jax.process_index() == 0:
        try:
            value = make()
        except Exception as exc:
            client.key_value_set(key, "error:" + (str(exc).strip().splitlines() or [""])[0][:500])
            raise
        client.key_value_set(key, "ok:" + value)
        return value
    reply = client.blocking_key_value_get(key, AGREE_TIMEOUT_MS)
    if reply.startswith("error:"):
        raise LaunchError(f"process 0 of the launch failed: {reply[len('error:'):]}",
                          "see the output of process 0")
    return reply[len("ok:"):]
