"""A sweep worker: claim a trial of the study, train it (a dead worker's trial resumes from
its run folder's `latest` checkpoint), tell the study how it ended; again until the budget
is spent. Any number of workers, on any machines sharing the study, run this same loop."""
from __future__ import annotations

from collections import Counter

from archspec.errors import ArchspecError
from archspec.experiment import study as st
from archspec.experiment.sweep import Point


def work(h: st.Handle, reporter=None, say=print) -> Counter:
    """Train trials until none is left; the count of each outcome ("complete", "pruned",
    "fail", "late"; "stopped" when a stop was asked: the trial is left to be resumed)."""
    from archspec.train.sweep_point import run_point

    tally: Counter = Counter()
    while (c := st.claim(h)) is not None:
        point = Point(c.number, {**h.sweep.fixed, **c.varying}, c.varying, c.folder)
        say(f"trial {c.number}" + (" (its worker died: taken over)" if c.taken_over else "")
            + f": {point.describe()} -> {h.sweep.folder / c.folder}")
        try:
            what, _ = run_point(h.sweep, point, reporter, on_epoch=st.reporter_of(h, c))
        except ArchspecError as exc:
            st.fail(h, c, exc.message)
            h.locks.release(c.number)
            if exc.exit_code == 2:   # bad input: every trial would fail the same way
                raise
            tally["fail"] += 1
            say(f"trial {c.number} failed: {exc.message}")
            continue
        except BaseException:
            h.locks.release(c.number)   # still running in the study: another worker resumes it
            raise
        told = st.tell(h, c, h.sweep.folder / c.folder)
        h.locks.release(c.number)
        tally[told] += 1
        say(f"trial {c.number} {what}: {told}")
        if told == "stopped":
            break
    return tally


__all__ = ["work"]
