"""Progress of a pass over a data set before training: checking a streamed folder's image
headers, decoding its training split for the normalisation statistics. On a large folder
such a pass takes minutes (before the data cache remembers it), and a command that says
nothing for minutes looks hung. A pass that ends within `quiet_s` says nothing; a longer
one reports on stderr: rewritten in place on a terminal, a line every `every_s` otherwise
(a log file)."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator


def tracked(items: Iterable, what: str, total: int, count: Callable = lambda item: 1,
            stream=None, clock: Callable[[], float] = time.monotonic,
            quiet_s: float = 2.0, every_s: float | None = None) -> Iterator:
    """Yield `items`, reporting how many of `total` examples (`count(item)` each) are done."""
    stream = stream or sys.stderr
    live = stream.isatty()
    every_s = every_s if every_s is not None else (0.5 if live else 10.0)
    start = clock()
    last, done, said = start, 0, False
    for item in items:
        yield item
        done += count(item)
        now = clock()
        if now - start >= quiet_s and (not said or now - last >= every_s):
            _say(stream, what, done, total, now - start, live)
            last, said = now, True
    if said:  # the last figure, so a pass that was reported is seen to end
        _say(stream, what, done, total, clock() - start, live)
        if live:
            stream.write("\n")
        stream.flush()


def _say(stream, what: str, done: int, total: int, seconds: float, live: bool) -> None:
    text = f"{what}: {done:,} of {total:,} ({100 * done / max(total, 1):.0f}%, {seconds:.0f} s)"
    stream.write(f"\r{text}" if live else f"{text}\n")
    stream.flush()
