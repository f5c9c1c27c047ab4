"""What every Typer signature shares: the one error handler, the `command` decorator,
help texts and argument helpers (cli.py and cli_io.py build on them)."""
from __future__ import annotations

import functools

import typer
from typer.core import TyperArgument, TyperOption

SHAPE_HELP = "override the input shape, e.g. 32,32,3"
SHAPE = "H,W,C"  # what --input-shape looks like in help
JSON_HELP = "machine-readable output"
CACHE_HELP = ("keep compiled programs in JAX's persistent cache ($ARCHSPEC_CACHE_DIR, else "
              "~/.cache/archspec/jax)")
RUN_HELP = "a run folder: runs/<experiment>/<timestamp>"
WAIT_HELP = ("when another process is training in the run folder, wait for it to end instead "
             "of refusing")


def _handled(fn):
    """A user's mistake ends with its message and exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from archspec.commands import BadParameter, Exit
        from archspec.errors import ArchspecError

        try:
            return fn(*args, **kwargs)
        except ArchspecError as exc:
            from archspec.ui.render import print_error

            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except BadParameter as exc:
            raise typer.BadParameter(exc.message, param_hint=exc.param_hint) from None
        except Exit as exc:
            raise typer.Exit(exc.code) from None

    return wrapper


def work(target: str, options: dict):
    """Run `module:function` of archspec/commands with the parsed options as keywords: a
    flag is declared once, in the Typer signature, and reaches the command by its name."""
    import importlib

    module, _, function = target.partition(":")
    return getattr(importlib.import_module(f"archspec.commands.{module}"), function)(**options)


def command(name: str | None, group: typer.Typer, examples: tuple = ()):
    """@group.command(name), with the one error handler around it and its help ending in
    real examples (tests/cli/test_help.py runs them past the parser)."""
    epilog = "[bold]Examples[/bold]\n" + "\n".join(f"  {e}" for e in examples) if examples else None
    return lambda fn: group.command(name, epilog=epilog)(_handled(fn))


def _plain_type(display):
    """Help shows what a value looks like, not Python types: nothing beside a flag (--smoke,
    --help), `<path>...` for a list of paths."""
    def shown(self, ctx):
        if getattr(self, "is_flag", False):
            return None
        label = display(self, ctx)
        if isinstance(label, str) and label.startswith("<list["):
            return f"<{label[6:-2].lower()}>..."
        return label
    return shown


for _kind in (TyperOption, TyperArgument):  # typer renders both through display_type_rich
    if hasattr(_kind, "display_type_rich"):
        _kind.display_type_rich = _plain_type(_kind.display_type_rich)


def _file(help: str):
    return typer.Argument(..., help=help, exists=True, dir_okay=False, readable=True)


def _run_dir():
    return typer.Argument(..., help=RUN_HELP, exists=True, file_okay=False)


def _checkpoint():
    return typer.Option("best", help="best or latest")
