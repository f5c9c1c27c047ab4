"""The consoles, and located errors and warnings as a person reads them. Tables: ui/tables.py."""
from __future__ import annotations

from rich.console import Console
from rich.text import Text

from archspec.errors import SpecError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line
console = Console(highlight=False, soft_wrap=True)


def _print_located(e: SpecError, label: str, style: str, fields=("expected", "found", "hint")):
    head = Text()
    if e.pos:
        head.append(f"{e.pos}: ", style="bold")
    head.append(f"{label}: ", style=style)
    if e.path:
        head.append(f"{e.path}: ", style="cyan")
    head.append(e.message)
    err_console.print(head)
    styles = {"expected": "green", "found": "red", "hint": "yellow"}
    for name in fields:
        value = getattr(e, name)
        if value is not None:
            err_console.print(Text(f"    {name + ':':<10}", style="dim") + Text(str(value), style=styles[name]))


def print_errors(errors: list[SpecError], file_label: str | None = None) -> None:
    for e in errors:
        _print_located(e, "error", "bold red")
    n = len(errors)
    err_console.print(Text(f"{n} error{'s' if n != 1 else ''}" +
                           (f" in {file_label}" if file_label else ""), style="bold red"))


def print_warnings(warnings: list[SpecError]) -> None:
    """Located warnings: the layout of errors, on stderr, without ending the command."""
    for w in warnings:
        _print_located(w, "warning", "bold yellow", fields=("hint",))


def print_problem(label: str, message: str, hint: str | None = None, where: str = "") -> None:
    head = Text()
    if where:
        head.append(f"{where}: ", style="bold")
    head.append(f"{label}: ", style="bold red")
    head.append(message)
    err_console.print(head)
    if hint:
        err_console.print(Text("    hint:     ", style="dim") + Text(hint, style="yellow"))


def warn(message: str, hint: str | None = None) -> None:
    """The `warn` callback the library's loaders take (train.reporter.Warn)."""
    print_problem("warning", message, hint)


def print_error(exc) -> None:
    """Any ArchspecError as the user reads it: all located errors of a file, or one problem
    with where it is (file:line:col, or a data file and record) and its hint."""
    from archspec.data.errors import DataError
    from archspec.errors import SpecErrors

    if isinstance(exc, SpecErrors):
        print_errors(exc.errors)
        return
    where = ":".join(str(x) for x in (getattr(exc, "file", None), getattr(exc, "record", None))
                     if x)
    if exc.pos:
        where = f"{exc.pos}" + (f": {where}" if where else "")
    label = "data error" if isinstance(exc, DataError) else "error"
    print_problem(label, exc.message, exc.hint, where=where)
