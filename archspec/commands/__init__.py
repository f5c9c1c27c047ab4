"""One module per command: the work behind each `archspec` subcommand, with no Typer.

A command signals the two outcomes that are not an `ArchspecError` with the exceptions
below; archspec/cli.py turns them into Typer's usage error and exit."""
from __future__ import annotations


class BadParameter(Exception):
    """A flag's value is refused: the CLI prints usage and the message, exit 2."""

    def __init__(self, message: str, param_hint: str | None = None):
        super().__init__(message)
        self.message, self.param_hint = message, param_hint


class Exit(Exception):
    """End the command with this exit code and nothing more printed."""

    def __init__(self, code: int = 0):
        super().__init__(code)
        self.code = code
