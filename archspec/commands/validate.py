"""`archspec validate`: every error of every architecture or experiment file at once, each
located. An experiment is checked whole: its keys, its data options and its architecture."""
from __future__ import annotations

from pathlib import Path

from archspec.commands import Exit


def validate(*, files: list[Path]) -> None:
    from archspec.errors import ArchspecError, SpecErrors
    from archspec.ui.render import console, print_error, print_errors, print_warnings
    from archspec.spec.lint import head_warnings
    from archspec.experiment.load import graph_of

    failed = 0
    for f in files:
        try:
            g = graph_of(f)
        except SpecErrors as exc:
            print_errors(exc.errors, str(f))
            failed += 1
            continue
        except ArchspecError as exc:  # an experiment's data options, say
            print_error(exc)
            failed += 1
            continue
        print_warnings(head_warnings(g))
        console.print(f"[green]ok[/green] {f}: {g.name}, {len(g.layers)} layers, "
                      f"{g.total('params'):,} parameters")
    if failed:
        raise Exit(2)
