"""The `archspec` command. Thin: parse options, call the library, render with rich.
JAX is imported only by the commands that need it, so `archspec --help` stays instant."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Write a neural network down in YAML, see exactly what it is, train it.")


def _fail_on_spec_errors(fn):
    """Spec problems end with located messages and exit code 2, never a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from archspec.errors import SpecErrors
        from archspec.render import print_errors

        try:
            return fn(*args, **kwargs)
        except SpecErrors as exc:
            print_errors(exc.errors)
            raise typer.Exit(2)

    return wrapper


@app.command()
def validate(files: List[Path] = typer.Argument(..., help="architecture YAML files")):
    """Check architecture files: every error at once, each with file:line:col."""
    from archspec.errors import SpecErrors
    from archspec.render import console, print_errors
    from archspec.spec.resolve import load_architecture

    failed = 0
    for f in files:
        try:
            g = load_architecture(f)
        except SpecErrors as exc:
            print_errors(exc.errors, str(f))
            failed += 1
            continue
        console.print(f"[green]ok[/green] {f}: {g.name}, {len(g.layers)} layers, "
                      f"{g.total('params'):,} parameters")
    if failed:
        raise typer.Exit(2)


@app.command()
@_fail_on_spec_errors
def summary(
    spec: Path = typer.Argument(..., help="architecture YAML file"),
    depth: Optional[int] = typer.Option(None, help="fold rows nested deeper than this (0: top level)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    input_shape: Optional[str] = typer.Option(None, help="override the input shape, e.g. 32,32,3"),
):
    """Shapes, parameters, MACs and receptive field of every layer, from the built Flax model."""
    from archspec.render import console, summary_table, summary_totals
    from archspec.spec.resolve import load_architecture
    from archspec.summary import summarize

    if depth is not None and depth < 0:
        raise typer.BadParameter("depth must be >= 0", param_hint="--depth")
    graph = load_architecture(spec, input_shape=_parse_shape(input_shape))
    s = summarize(graph, depth)
    if as_json:
        print(json.dumps(s.to_dict(), indent=2))
        return
    console.print(summary_table(s))
    console.print(summary_totals(s))


def _parse_shape(text: Optional[str]):
    if text is None:
        return None
    try:
        shape = tuple(int(x) for x in text.replace("x", ",").replace("×", ",").split(",") if x.strip())
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise typer.BadParameter(f"expected positive integers like 224,224,3, got {text!r}",
                                 param_hint="--input-shape")
    return shape


@app.command()
def schema(
    kind: str = typer.Argument("architecture", help="architecture or experiment"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write to a file"),
):
    """Print the JSON Schema of the spec language (for editor validation and completion)."""
    from archspec.spec.jsonschema import schema_for

    if kind not in ("architecture", "experiment"):
        raise typer.BadParameter("expected 'architecture' or 'experiment'", param_hint="KIND")
    text = json.dumps(schema_for(kind), indent=2)
    if output:
        output.write_text(text + "\n")
    else:
        print(text)


def main():
    app()


if __name__ == "__main__":
    main()
