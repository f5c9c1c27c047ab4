"""`archspec plot --terminal`: the training curves drawn in the terminal."""
from __future__ import annotations


def print_terminal(curves, console) -> None:
    """Charts as wide as the terminal (40 to 120 columns); a line is never cropped."""
    from archspec.viz.plot import terminal_lines

    for line in terminal_lines(curves, width=max(min(console.width, 120), 40)):
        console.print(line, no_wrap=True)
