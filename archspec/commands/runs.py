"""`archspec runs`: a table of the runs under a folder, read from the run folders alone."""
from __future__ import annotations

from pathlib import Path

from archspec import jsonout


def runs(*, directory: Path, sort: str, reverse: bool, as_json: bool) -> None:
    from archspec.runs.listing import list_runs, sort_runs
    from archspec.ui.render import console, warn
    from archspec.ui.runs import runs_table

    rows = sort_runs(list_runs(directory, warn), sort, reverse)
    if as_json:
        print(jsonout.dumps([r.to_dict() for r in rows], indent=2))
        return
    if not rows:
        console.print(f"no runs in {directory}")
        return
    console.print(runs_table(rows, f"{len(rows)} run{'s' if len(rows) != 1 else ''} in {directory}"))
