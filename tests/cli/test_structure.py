"""archspec/cli.py is Typer wiring only: each command's work lives in archspec/commands/,
which knows nothing of Typer."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "archspec"
COMMANDS = sorted((PACKAGE / "commands").glob("*.py"))
CLI_MAY_IMPORT = ("archspec.commands", "archspec.ui", "archspec.errors",
                  "archspec.__version__", "archspec.cli_base", "archspec.cli_io")


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path.name}: relative import"
            names.add(node.module or "")
            names |= {f"{node.module}.{a.name}" for a in node.names
                      if node.module == "archspec"}
    return names


@pytest.mark.parametrize("wiring", ["cli.py", "cli_base.py", "cli_io.py"])
def test_cli_imports_only_commands_ui_and_errors(wiring):
    ours = {n for n in imported(PACKAGE / wiring) if n.startswith("archspec.")}
    wrong = sorted(n for n in ours
                   if not any(n == p or n.startswith(p + ".") for p in CLI_MAY_IMPORT))
    assert not wrong, f"cli.py imports {wrong}: move that work into archspec/commands/"


def test_every_command_has_its_module():
    from typer.main import get_command

    from archspec.cli import app

    names = set(get_command(app).commands)
    modules = {p.stem for p in COMMANDS}
    assert names <= modules, sorted(names - modules)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.name)
def test_command_modules_know_nothing_of_typer(path):
    typer = {n for n in imported(path) if n.split(".")[0] in ("typer", "click")}
    assert not typer, f"{path.name} imports {sorted(typer)}: raise commands.BadParameter/Exit"


def test_one_handler_prints_any_archspec_error_with_its_place_and_code(capsys):
    import typer

    from archspec.cli_base import _handled
    from archspec.errors import ArchspecError, Pos

    class Odd(ArchspecError):
        exit_code = 7

    def fails():
        raise Odd("no such thing", "try another", pos=Pos("e.yaml", 3, 5))

    with pytest.raises(typer.Exit) as exit_:
        _handled(fails)()
    assert exit_.value.exit_code == 7
    err = capsys.readouterr().err
    assert "e.yaml:3:5: error: no such thing" in err and "hint:     try another" in err


def test_each_flag_is_declared_once():
    """A command's options are declared in its Typer signature only and reach the work in
    archspec/commands by name: the work takes keyword-only parameters, the same names."""
    import importlib
    import inspect

    from archspec import cli

    from archspec import cli_io

    targets = [(module, fn.name, *call.args[0].value.split(":"))
               for module, file in ((cli, "cli.py"), (cli_io, "cli_io.py"))
               for fn in ast.parse((PACKAGE / file).read_text()).body
               if isinstance(fn, ast.FunctionDef)
               for call in ast.walk(fn) if isinstance(call, ast.Call)
               and getattr(call.func, "id", None) == "work"]
    assert len(targets) >= 15
    for wiring, fn, module, name in targets:
        work = getattr(importlib.import_module(f"archspec.commands.{module}"), name)
        params = inspect.signature(work).parameters.values()
        assert all(p.kind is p.KEYWORD_ONLY for p in params), f"{module}.{name}: keyword-only"
        assert [p.name for p in params] == list(inspect.signature(getattr(wiring, fn)).parameters), \
            f"{fn} and commands.{module}.{name} name different options"
