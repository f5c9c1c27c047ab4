"""`archspec plot --terminal` gives every run its own marker, drawn on its curves and shown
next to its name in the legend, so runs stay apart without colour."""
from __future__ import annotations

import json

from helpers import run_cli

SPLITS = ("train", "val")


def write_run(folder, epochs: int, scale: float):
    """A run folder as the trainer leaves it, as far as plot reads it: metrics.jsonl."""
    folder.mkdir(parents=True)
    lines = [{"step": 10 * e, "epoch": e, "split": split, "loss": scale / e,
              "accuracy_digits": min(0.2 + 0.06 * e * scale, 1.0)}
             for e in range(1, epochs + 1) for split in SPLITS]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def runs(tmp_path):
    return [write_run(tmp_path / "digits_mlp" / "20250101-100000", 12, 1.0),
            write_run(tmp_path / "digits_mlp" / "20250102-100000", 12, 1.6),
            write_run(tmp_path / "digits_lenet" / "20250103-100000", 5, 2.4)]


def test_each_run_has_its_own_marker_without_colour(tmp_path):
    from archspec.viz.plot import MARKERS

    folders = runs(tmp_path)
    r = run_cli("plot", *folders, "--terminal", env={"NO_COLOR": "1"})
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout                        # really no colour
    lines = r.stdout.splitlines()
    chart = [line.split("┤", 1)[1] for line in lines if "┤" in line]
    assert chart, r.stdout
    markers = []
    for f in folders:
        label = f"{f.parent.name}/{f.name}"
        (entry,) = [line for line in lines if line.endswith(label)]
        m = entry[-len(label) - 2]                         # "<marker> <label>"
        assert m in MARKERS and entry[-len(label) - 1] == " ", entry
        markers.append(m)
    assert len(set(markers)) == len(folders), markers
    for m in markers:
        assert sum(row.count(m) for row in chart) >= 2, f"marker {m!r} not drawn:\n{r.stdout}"
    assert any(0x2801 <= ord(c) <= 0x28FF for row in chart for c in row), "no line drawn"


def test_markers_are_drawn_with_colour_too(tmp_path):
    from io import StringIO

    from rich.console import Console

    from archspec.viz.plot import load_curves, marker, terminal_lines

    curves = [load_curves(f) for f in runs(tmp_path)]
    console = Console(file=StringIO(), force_terminal=True, color_system="truecolor", width=100)
    for line in terminal_lines(curves, width=100):
        console.print(line, no_wrap=True)
    out = console.file.getvalue()
    assert "\x1b[" in out                                  # coloured
    plain = [t.plain for t in terminal_lines(curves, width=100)]
    for i, c in enumerate(curves):
        assert any(p.endswith(f"{marker(i)} {c.label}") for p in plain)
        assert sum(p.split("┤", 1)[1].count(marker(i)) for p in plain if "┤" in p) >= 2
