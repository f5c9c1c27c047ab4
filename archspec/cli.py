"""The `archspec` command. Thin: parse options, call the library, render with rich.
JAX is imported only by the commands that need it, so `archspec --help` stays instant."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from archspec import jsonout

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Write a neural network down in YAML, see exactly what it is, train it.")


def _fail_on_spec_errors(fn):
    """Spec problems end with located messages and exit code 2, never a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from archspec.errors import SpecErrors
        from archspec.ui.render import print_errors

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
    from archspec.ui.render import console, print_errors, print_warnings
    from archspec.spec.lint import head_warnings
    from archspec.spec.resolve import load_architecture

    failed = 0
    for f in files:
        try:
            g = load_architecture(f)
        except SpecErrors as exc:
            print_errors(exc.errors, str(f))
            failed += 1
            continue
        print_warnings(head_warnings(g))
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
    from archspec.ui.render import console, summary_table, summary_totals
    from archspec.spec.resolve import load_architecture

    graph = load_architecture(spec, input_shape=shape)
    from archspec.ui.render import print_warnings
    from archspec.spec.lint import head_warnings

    print_warnings(head_warnings(graph))
    from archspec.model.summary import summarize  # JAX: only once the spec is known to be good

    s = summarize(graph, depth)
    if as_json:
        print(jsonout.dumps(s.to_dict(), indent=2))
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
        try:
            output.write_text(text + "\n")
        except OSError as exc:
            raise typer.BadParameter(f"cannot write {output}: {exc.strerror or exc}",
                                     param_hint="--output") from None
    else:
        print(text)


def _user_errors(fn):
    """Data, run-folder and checkpoint problems: a message, a hint, no traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from archspec.data import DataError
        from archspec.ui.render import print_problem
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
    resume: Optional[Path] = typer.Option(None, help="continue the run in this folder",
                                          exists=True, file_okay=False),
    smoke: bool = typer.Option(False, help="a few steps on a little data: checks a config runs"),
    output: Optional[str] = typer.Option(None, help="folder for runs (default: runs)"),
    track: Optional[str] = typer.Option(None, help="also log the run to a tracker: mlflow "
                                                   "(TensorBoard files are always written)"),
):
    """Train an experiment (or an architecture on a built-in data set)."""
    import os

    if os.environ.get("JAX_COORDINATOR_ADDRESS") or os.environ.get("ARCHSPEC_DISTRIBUTED"):
        import jax  # several processes, one per host: join them into one device mesh

        jax.distributed.initialize()
    from archspec.ui.render import console
    from archspec.train import config as C
    from archspec.train.loop import fit, prepare
    from archspec.train.report import print_result

    if track is not None:
        from archspec.train.tracking import check_tracker

        check_tracker(track)

    if resume is not None:
        from archspec.train.evaluate import load_run

        exp, graph, arch_text = load_run(resume)
        setup = prepare(exp, graph, arch_text, exp.model_dump(mode="json"))
        from archspec.train.checkpoint import finished_step

        done = finished_step(resume, setup)
        if done is not None:
            console.print(f"{resume} already finished: all {setup.total_steps} steps done "
                          f"(checkpoint {done}); nothing to resume")
            return
        console.print(f"resuming [bold]{resume}[/bold]")
        result = fit(setup, run_dir=Path(resume), resume=True, console=console)
        print_result(console, result, setup)
        _track(track, result.run_dir, console)
        _exit_for(result.outcome)
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
    from archspec.ui.render import print_warnings
    from archspec.spec.lint import head_warnings

    print_warnings(head_warnings(graph))
    setup = prepare(exp, graph, arch_text, exp.model_dump(mode="json"), smoke=smoke, root=root)
    setup.experiment_file = exp_path
    console.print(f"[bold]{exp.name}[/bold]: {graph.name}, {graph.total('params'):,} parameters, "
                  f"{setup.dataset.name} ({len(setup.dataset.train.x)} train / "
                  f"{len(setup.dataset.val.x)} val / {len(setup.dataset.test.x)} test), "
                  f"{setup.total_steps} steps on {setup.mesh.devices.size} device(s)")
    result = fit(setup, console=console)
    print_result(console, result, setup)
    _track(track, result.run_dir, console)
    _exit_for(result.outcome)


def _exit_for(outcome: str) -> None:
    """A run that did not finish never exits 0 (docs/reliability.md lists the codes)."""
    from archspec.train.loop import EXIT_CODES

    code = EXIT_CODES.get(outcome, 1)
    if code:
        raise typer.Exit(code)


def _track(tracker: Optional[str], run_dir: Path, console) -> None:
    if tracker is not None:
        from archspec.train.tracking import log_run

        console.print(f"logged to {tracker}: {log_run(tracker, run_dir)}")


@app.command("eval")
@_fail_on_spec_errors
@_user_errors
def eval_(
    run_dir: Path = typer.Argument(..., help="a run folder: runs/<experiment>/<timestamp>",
                                   exists=True, file_okay=False),
    split: str = typer.Option("test", help="train, val or test"),
    checkpoint: str = typer.Option("best", help="best or latest"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
):
    """Measure a trained run: loss, accuracy, per-class precision/recall, confusion matrix."""
    from archspec.ui.render import console, eval_tables
    from archspec.train.evaluate import run_eval

    if split not in ("train", "val", "test"):
        raise typer.BadParameter("expected train, val or test", param_hint="--split")
    if checkpoint not in ("best", "latest"):
        raise typer.BadParameter("expected best or latest", param_hint="--checkpoint")
    out = run_eval(run_dir, split, checkpoint)
    if as_json:
        print(jsonout.dumps(out, indent=2))
        return
    for t in eval_tables(out):
        console.print(t)


def _viz_errors(fn):
    """Picture, run-table and sweep problems: a message, a hint, the error's exit code."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from archspec.ui.render import print_problem
        from archspec.runs_table import RunsError
        from archspec.viz import VizError

        try:
            return fn(*args, **kwargs)
        except (VizError, RunsError) as exc:
            print_problem("error", str(exc), exc.hint)
            raise typer.Exit(exc.code)

    return wrapper


@app.command()
@_viz_errors
def plot(
    runs: List[Path] = typer.Argument(..., help="run folders (or folders holding runs)"),
    output: Path = typer.Option(Path("curves.png"), "-o", "--output", help="picture to write"),
    terminal: bool = typer.Option(False, "--terminal", help="draw the curves in the terminal"),
):
    """Loss and accuracy per epoch (train and validation) of one or more runs, overlaid."""
    from archspec.ui.render import console
    from archspec.viz import check_image_path
    from archspec.viz.plot import find_runs, load_curves, plot_curves, print_terminal

    if not terminal:
        check_image_path(output)
    curves = [load_curves(r) for r in find_runs(runs)]
    if terminal:
        print_terminal(curves, console)
        return
    plot_curves(curves, output)
    console.print(f"wrote {output}: {len(curves)} run{'s' if len(curves) != 1 else ''}, "
                  f"{max(c.last_epoch for c in curves)} epochs")


@app.command("graph")
@_fail_on_spec_errors
@_viz_errors
def graph_cmd(
    spec: Path = typer.Argument(..., help="architecture or experiment YAML file", exists=True,
                                dir_okay=False, readable=True),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="net.svg, .png, .pdf (Graphviz), .dot or .mmd "
                                               "(Mermaid); default: DOT to the terminal"),
    collapse: Optional[bool] = typer.Option(None, "--collapse/--no-collapse",
                                            help="fold blocks into one box each "
                                                 "(default: only graphs of over 80 nodes)"),
    depth: Optional[int] = typer.Option(None, help="fold nodes nested deeper than this "
                                                   "(0: top level; implies --collapse; default 1)"),
    input_shape: Optional[str] = typer.Option(None, help="override the input shape, e.g. 32,32,3"),
):
    """The architecture as a diagram: branches, skip connections, heads, shapes."""
    if depth is not None and depth < 0:
        raise typer.BadParameter("depth must be >= 0", param_hint="--depth")
    from archspec.ui.render import console
    from archspec.train import config as C
    from archspec.viz.graph import build_diagram, output_format, write_diagram

    if output is not None:
        output_format(output)
    shape = _parse_shape(input_shape)
    if C.is_architecture_file(spec):
        from archspec.spec.resolve import load_architecture

        graph = load_architecture(spec, input_shape=shape)
    else:
        exp, root = C.load_experiment(spec)
        graph, _ = C.architecture_graph(exp, str(spec), root, input_shape=shape)
    diagram = build_diagram(graph, collapse, depth)
    text = write_diagram(diagram, output)
    if output is None:
        print(text, end="")
        return
    console.print(f"wrote {output}: {len(diagram.boxes)} boxes, {len(diagram.edges)} edges"
                  + (" (blocks collapsed)" if diagram.collapsed else ""))


@app.command()
@_fail_on_spec_errors
@_user_errors
@_viz_errors
def maps(
    run_dir: Path = typer.Argument(..., help="a run folder: runs/<experiment>/<timestamp>",
                                   exists=True, file_okay=False),
    image: Path = typer.Argument(..., help="PNG/JPEG picture, or a .npy array of one input",
                                 exists=True, dir_okay=False, readable=True),
    layer: List[str] = typer.Option([], "--layer", help="layer name, repeatable "
                                                        "(default: the first 4 conv layers)"),
    output: Path = typer.Option(Path("maps.png"), "-o", "--output",
                                help="picture to write; with several layers, one per layer "
                                     "named maps_<layer>.png"),
    checkpoint: str = typer.Option("best", help="best or latest"),
    invert: bool = typer.Option(False, help="invert the picture first (dark ink on light "
                                            "paper for data of light ink on dark)"),
):
    """Feature maps of chosen layers of a trained run for one input picture."""
    from archspec.ui.render import console
    from archspec.viz import check_image_path
    from archspec.viz.maps import feature_maps, output_paths, plot_layer

    if checkpoint not in ("best", "latest"):
        raise typer.BadParameter("expected best or latest", param_hint="--checkpoint")
    check_image_path(output)
    found, prediction, which = feature_maps(run_dir, image, layer, checkpoint, invert)
    caption = f"input {image.name}" + (f" · predicted {prediction}" if prediction else "")
    for m, path in zip(found, output_paths(output, found)):
        plot_layer(m, path, caption)
        shape = "×".join(map(str, m.values.shape))
        console.print(f"wrote {path}: {m.node_id} ({m.description}), {shape}")
    if prediction:
        console.print(f"prediction ({which} checkpoint): {prediction}")


@app.command("pool")
@_viz_errors
def pool_cmd(
    image: Path = typer.Argument(..., help="PNG/JPEG picture (or a .npy array)", exists=True,
                                 dir_okay=False, readable=True),
    op: str = typer.Option("all", help="max, min, avg or all"),
    size: int = typer.Option(2, "--size", "-k", help="window size K (K×K)"),
    stride: Optional[int] = typer.Option(None, help="step between windows (default: K)"),
    output: Path = typer.Option(Path("pooling.png"), "-o", "--output", help="picture to write"),
):
    """Downsampling by pooling: a picture and its max, min and average pooled versions."""
    from archspec.ui.render import console
    from archspec.viz import check_image_path
    from archspec.viz.pool import OPS, load, plot_pooling, pool_all

    ops = OPS if op == "all" else (op,)
    if any(o not in OPS for o in ops):
        raise typer.BadParameter("expected max, min, avg or all", param_hint="--op")
    check_image_path(output)
    picture = load(image)
    results = pool_all(picture, ops, size, stride)
    plot_pooling(picture, results, size, stride, output, image.name)
    h, w = picture.shape[:2]
    console.print(f"wrote {output}: {h}×{w} -> " + ", ".join(
        f"{o} {a.shape[0]}×{a.shape[1]}" for o, a in results))


@app.command()
@_viz_errors
def runs(
    directory: Path = typer.Argument(Path("runs"), help="folder of runs (default: runs)"),
    sort: str = typer.Option("date", help="date, experiment, run, val, test, epochs, speed "
                                          "or status (metrics: best first)"),
    reverse: bool = typer.Option(False, help="reverse the order"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
):
    """A table of runs: experiment, date, best validation and test metric, speed, status."""
    from archspec.ui.render import console
    from archspec.runs_table import list_runs, runs_table, sort_runs

    rows = sort_runs(list_runs(directory), sort, reverse)
    if as_json:
        print(jsonout.dumps([r.to_dict() for r in rows], indent=2))
        return
    if not rows:
        console.print(f"no runs in {directory}")
        return
    console.print(runs_table(rows, f"{len(rows)} run{'s' if len(rows) != 1 else ''} in {directory}"))


@app.command()
@_fail_on_spec_errors
@_viz_errors
def sweep(
    file: Path = typer.Argument(..., help="sweep YAML: experiment, grid and/or random",
                                exists=True, dir_okay=False, readable=True),
    point: Optional[int] = typer.Option(None, "--point", help="run only point K (0-based), "
                                        "e.g. --point $SLURM_ARRAY_TASK_ID"),
    parallel_hint: bool = typer.Option(False, "--parallel-hint", help="list the points and "
                                       "print commands that run them in parallel; train nothing"),
    summary_only: bool = typer.Option(False, "--summary", help="only print the table of points"),
    output: Optional[str] = typer.Option(None, help="folder for runs (default: the sweep "
                                                    "file's output, else runs)"),
):
    """Train an experiment at every point of a grid or random search, resumably."""
    from archspec.ui.render import console
    from archspec.sweep import (check_points, load_sweep, parallel_hint as hint_lines,
                                point_status, run_point, summary_table, write_manifest, DONE)

    sw = load_sweep(file, output)
    points = sw.points()
    if parallel_hint or summary_only:
        console.print(summary_table(sw, points))
        if parallel_hint:
            for line in hint_lines(sw, points, file):
                console.print(line, style="dim" if line.startswith("#") else None)
        return
    if point is not None and not 0 <= point < len(points):
        raise typer.BadParameter(f"this sweep has {len(points)} points: 0 to {len(points) - 1}",
                                 param_hint="--point")
    chosen = points if point is None else [points[point]]
    todo = [p for p in chosen if point_status(sw.point_dir(p)) not in DONE]
    check_points(sw, todo)
    write_manifest(sw, points)
    console.print(f"[bold]sweep {sw.name}[/bold]: {len(points)} points, "
                  f"{len(chosen) - len(todo)} already finished, {len(todo)} to run "
                  f"-> {sw.folder}")
    if todo:  # JAX (and the training errors' handler) only when something trains
        _user_errors(_sweep_points)(sw, todo, file, console, run_point)
    console.print()
    console.print(summary_table(sw, chosen))


def _sweep_points(sw, todo, file, console, run_point) -> None:
    for k, p in enumerate(todo, start=1):
        console.print(f"\n[bold]point {p.index}[/bold] ({k}/{len(todo)}) {p.id}: {p.describe()}")
        what, result = run_point(sw, p, console=console)
        if result is not None and result.stopped:
            console.print(f"stopped; run `archspec sweep {file}` again to resume")
            break
        if result is not None:
            test = result.test or {}
            acc = next((v for key, v in test.items() if key.startswith("accuracy")), None)
            console.print(f"{what} {result.run_dir} in {result.seconds:.1f} s" +
                          (f", test accuracy {100 * acc:.2f}%" if acc is not None else ""))


@app.command()
@_fail_on_spec_errors
@_user_errors
def predict(
    run_dir: Path = typer.Argument(..., help="a run folder: runs/<experiment>/<timestamp>",
                                   exists=True, file_okay=False),
    inputs: List[Path] = typer.Argument(..., help="images (PNG/JPEG), .npy arrays (one "
                                                  "example or a batch) or CSV files"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    top: int = typer.Option(3, "--top", help="classes shown per example, most probable first"),
    checkpoint: str = typer.Option("best", help="best or latest"),
):
    """Class probabilities or values of a trained run for new examples."""
    from archspec.predict import predict as run_predict, render
    from archspec.ui.render import console

    if checkpoint not in ("best", "latest"):
        raise typer.BadParameter("expected best or latest", param_hint="--checkpoint")
    if top < 1:
        raise typer.BadParameter("top must be >= 1", param_hint="--top")
    result = run_predict(run_dir, inputs, top, checkpoint)
    if as_json:
        print(jsonout.dumps(result, indent=2))
        return
    render(result, console)


@app.command()
@_fail_on_spec_errors
def bench(
    spec: Path = typer.Argument(..., help="architecture YAML file", exists=True, dir_okay=False,
                                readable=True),
    batch: int = typer.Option(32, "--batch", help="examples per step"),
    steps: int = typer.Option(10, "--steps", help="timed steps (after warm-up)"),
    precision: str = typer.Option("float32", help="float32 or bf16 (bfloat16 compute)"),
    warmup: int = typer.Option(2, help="untimed steps after compiling"),
    matmul_size: int = typer.Option(2048, help="n of the n×n matmul that measures the peak"),
    input_shape: Optional[str] = typer.Option(None, help="override the input shape, e.g. 32,32,3"),
    scan_blocks: bool = typer.Option(False, help="compile runs of identical repeated blocks as "
                                                 "one scan (faster compiles)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
):
    """Compile and time the train step on a random batch: compile time, step time,
    examples/s, FLOP/s against the measured matmul peak, peak memory."""
    if precision not in ("float32", "bf16"):
        raise typer.BadParameter("expected float32 or bf16", param_hint="--precision")
    for name, value, low in (("--batch", batch, 1), ("--steps", steps, 1), ("--warmup", warmup, 0),
                             ("--matmul-size", matmul_size, 1)):
        if value < low:
            raise typer.BadParameter(f"must be >= {low}", param_hint=name)
    shape = _parse_shape(input_shape)
    from archspec.spec.resolve import load_architecture

    graph = load_architecture(spec, input_shape=shape)
    _check_bench_sizes(graph, batch, matmul_size)
    from archspec.bench import bench as run_bench, table
    from archspec.ui.render import console, print_problem

    try:
        result = run_bench(spec, batch, steps, precision, warmup, matmul_size, graph=graph,
                           scan_blocks=scan_blocks)
    except ValueError as exc:
        print_problem("error", str(exc))
        raise typer.Exit(2)
    if as_json:
        print(jsonout.dumps(result.to_dict(), indent=2))
        return
    console.print(table(result))


def _check_bench_sizes(graph, batch: int, matmul_size: int) -> None:
    """Refuse a batch or a peak matmul that could not fit in memory, before allocating it."""
    import math

    from archspec.fmt import BYTES_PER_VALUE, fmt_bytes
    from archspec.spec.resolve import MAX_ACTIVATIONS

    values = batch * sum(math.prod(n.shape or ()) for n in graph.nodes.values())
    if values > MAX_ACTIVATIONS:
        raise typer.BadParameter(f"a batch of {batch:,} holds {values:,} layer output values "
                                 f"(~{fmt_bytes(values * BYTES_PER_VALUE)} in float32); at most "
                                 f"{MAX_ACTIVATIONS:,}", param_hint="--batch")
    if 3 * matmul_size ** 2 > MAX_ACTIVATIONS:  # two operands and the product
        raise typer.BadParameter(f"three {matmul_size:,}×{matmul_size:,} matrices take "
                                 f"~{fmt_bytes(12 * matmul_size ** 2)}; at most "
                                 f"{math.isqrt(MAX_ACTIVATIONS // 3):,}",
                                 param_hint="--matmul-size")


def main():
    app()


if __name__ == "__main__":
    main()
