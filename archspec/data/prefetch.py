"""Reading batches ahead on a background thread, so the accelerator does not wait on
NumPy gathers (and, with `put`, on host-to-device copies)."""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

_POLL_S = 0.05  # how often a blocked producer checks whether the consumer left


class _Done:
    pass


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetch(iterator, size: int = 2, put: Callable | None = None) -> Iterator:
    """Yield the items of `iterator`, computed up to `size` items ahead on a daemon
    thread. `put` (e.g. a jax.device_put with a sharding) is applied to each item on
    that thread. An exception there is raised here, at the item where it happened.
    Closing or dropping this generator stops the thread. `size` 0 means no thread."""
    if size < 1:
        yield from (put(item) if put else item for item in iterator)
        return
    items: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(iterator, put, items, stop),
                              name="archspec-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()  # a producer blocked on a full queue sees this within _POLL_S
        # Wait for it: a thread left inside a device copy at interpreter exit aborts
        # the process.
        thread.join(timeout=10 * _POLL_S + 5)


def _produce(iterator, put, items: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in iterator:
            if stop.is_set() or not _offer(items, put(item) if put else item, stop):
                return
        _offer(items, _Done(), stop)
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer to re-raise
        _offer(items, _Failed(exc), stop)


def _offer(items: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            items.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False
