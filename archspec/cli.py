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
def validate(files: List[Path] = typer.Argument(..., help="architecture YAML files", exists=True,
                                                dir_okay=False, readable=True)):
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
    spec: Path = typer.Argument(..., help="architecture YAML file", exists=True, dir_okay=False,
                                readable=True),
    depth: Optional[int] = typer.Option(None, help="fold rows nested deeper than this (0: top level)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    input_shape: Optional[str] = typer.Option(None, help="override the input shape, e.g. 32,32,3"),
):
    """Shapes, parameters, MACs and receptive field of every layer, from the built Flax model."""
    if depth is not None and depth < 0:
        raise typer.BadParameter("depth must be >= 0", param_hint="--depth")
    shape = _parse_shape(input_shape)
    from archspec.render import console, summary_table, summary_totals
    from archspec.spec.resolve import load_architecture

    graph = load_architecture(spec, input_shape=shape)
    from archspec.summary import summarize  # JAX: only once the spec is known to be good

    s = summarize(graph, depth)
    if as_json:
        print(json.dumps(s.to_dict(), indent=2))
        return
    console.print(summary_table(s))
    console.print(summary_totals(s))


def _parse_shape(text: Optional[str]):
    if text is None:
        return None
    parts = text.replace("×", ",").replace("x", ",").split(",")
    shape = tuple(int(p) for p in parts if p.strip().isdigit())
    if not shape or len(shape) != len(parts) or min(shape) < 1:
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


def _user_errors(fn):
    """Data, run-folder and checkpoint problems: a message, a hint, no traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from archspec.data import DataError
        from archspec.render import print_problem
        from archspec.train.checkpoint import CheckpointError
        from archspec.train.loop import TrainError
        from archspec.train.runs import RunError

        try:
            return fn(*args, **kwargs)
        except DataError as exc:
            print_problem("data error", exc.message, getattr(exc, "hint", None),
                          where=":".join(str(x) for x in (exc.file, exc.record) if x))
            raise typer.Exit(2)
        except TrainError as exc:
            print_problem("error", str(exc), exc.hint)
            raise typer.Exit(2)
        except (RunError, CheckpointError) as exc:
            print_problem("error", str(exc), exc.hint)
            raise typer.Exit(1)

    return wrapper


@app.command()
@_fail_on_spec_errors
@_user_errors
def train(
    file: Optional[Path] = typer.Argument(None, help="experiment YAML, or an architecture YAML"),
    data: Optional[str] = typer.Option(None, help="data set for a bare architecture (digits, shapes, ...)"),
    epochs: Optional[int] = typer.Option(None, help="number of epochs"),
    steps: Optional[int] = typer.Option(None, help="stop after this many steps"),
    batch_size: Optional[int] = typer.Option(None, help="examples per step"),
    set_: List[str] = typer.Option([], "--set", help="override a config key: --set optimizer.lr=3e-4"),
    resume: Optional[Path] = typer.Option(None, help="continue the run in this folder"),
    smoke: bool = typer.Option(False, help="a few steps on a little data: checks a config runs"),
    output: Optional[str] = typer.Option(None, help="folder for runs (default: runs)"),
):
    """Train an experiment (or an architecture on a built-in data set)."""
    from archspec.render import console
    from archspec.train import config as C
    from archspec.train.loop import fit, prepare
    from archspec.train.report import print_result

    if resume is not None:
        from archspec.train.evaluate import load_run

        exp, graph, arch_text = load_run(resume)
        setup = prepare(exp, graph, arch_text, exp.model_dump(mode="json"))
        console.print(f"resuming [bold]{resume}[/bold]")
        result = fit(setup, run_dir=Path(resume), resume=True, console=console)
        print_result(console, result, setup)
        return
    if file is None:
        raise typer.BadParameter("give an experiment file, or --resume RUN_DIR", param_hint="FILE")
    overrides = list(set_)
    for key, value in (("epochs", epochs), ("steps", steps), ("batch_size", batch_size),
                       ("output", output)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if smoke:
        overrides += ["data.limit=300"]
    if C.is_architecture_file(file):
        exp, root = C.experiment_for_architecture(str(file), data, overrides)
        exp_path = None
    else:
        if data is not None:
            overrides.append(f"data.name={data}")
        exp, root = C.load_experiment(file, overrides)
        exp_path = str(file)
    graph, arch_text = C.architecture_graph(exp, exp_path, root)
    setup = prepare(exp, graph, arch_text, exp.model_dump(mode="json"), smoke=smoke)
    console.print(f"[bold]{exp.name}[/bold]: {graph.name}, {graph.total('params'):,} parameters, "
                  f"{setup.dataset.name} ({len(setup.dataset.train.x)} train / "
                  f"{len(setup.dataset.val.x)} val / {len(setup.dataset.test.x)} test), "
                  f"{setup.total_steps} steps on {setup.mesh.devices.size} device(s)")
    result = fit(setup, console=console)
    print_result(console, result, setup)


@app.command("eval")
@_fail_on_spec_errors
@_user_errors
def eval_(
    run_dir: Path = typer.Argument(..., help="a run folder: runs/<experiment>/<timestamp>"),
    split: str = typer.Option("test", help="train, val or test"),
    checkpoint: str = typer.Option("best", help="best or latest"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
):
    """Measure a trained run: loss, accuracy, per-class precision/recall, confusion matrix."""
    from archspec.render import console, eval_tables
    from archspec.train.evaluate import run_eval

    if split not in ("train", "val", "test"):
        raise typer.BadParameter("expected train, val or test", param_hint="--split")
    if checkpoint not in ("best", "latest"):
        raise typer.BadParameter("expected best or latest", param_hint="--checkpoint")
    out = run_eval(run_dir, split, checkpoint)
    if as_json:
        print(json.dumps(out, indent=2))
        return
    for t in eval_tables(out):
        console.print(t)


def main():
    app()


if __name__ == "__main__":
    main()
