"""A pass over the data before training (image headers, normalisation statistics) reports
its progress once it has run for a while, and says nothing when it is quick."""
from __future__ import annotations

import io

from archspec.data.passes import tracked


class Clock:
    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_quick_pass_says_nothing():
    out = io.StringIO()
    assert list(tracked(range(5), "checking image headers", 5, stream=out,
                        clock=Clock(0.1))) == list(range(5))
    assert out.getvalue() == ""


def test_a_long_pass_reports_counts_and_its_end_in_a_log():
    """Chunks of 64 examples (a statistics pass), one clock tick of 1 s each: past the
    first 2 s, a line every 3 s, and the last figure at the end."""
    out = io.StringIO()
    chunks = [[0] * 64] * 9 + [[0] * 24]          # 600 examples
    got = list(tracked(chunks, "normalisation statistics", 600, len, stream=out,
                       clock=Clock(1.0), every_s=3.0))
    assert got == chunks
    lines = out.getvalue().splitlines()
    assert lines[0] == "normalisation statistics: 128 of 600 (21%, 2 s)"
    assert lines[1] == "normalisation statistics: 320 of 600 (53%, 5 s)"
    assert lines[-1] == "normalisation statistics: 600 of 600 (100%, 11 s)"


def test_on_a_terminal_the_line_is_rewritten_and_ended():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    list(tracked(range(10), "checking image headers", 10, stream=out, clock=Clock(1.0)))
    text = out.getvalue()
    assert text.startswith("\rchecking image headers: 2 of 10")
    assert text.endswith("\rchecking image headers: 10 of 10 (100%, 11 s)\n")
    assert text.count("\n") == 1
